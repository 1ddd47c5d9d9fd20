//! Automatic HTTPS: which certificate each TLS handshake gets, where it
//! comes from, and keeping it valid.
//!
//! In: the `[tls]` section and the sites of each loaded config (`apply`),
//! accepted TCP connections on HTTPS listeners (`accept`), and plain HTTP
//! requests (`policy::intercept` answers ACME HTTP-01 challenges and
//! redirects to HTTPS).
//! Out: TLS streams for `server/conn.rs` to serve, certificates swapped
//! into the resolver live, and `certificates()` (hosts, expiry, issuer) for
//! status and metrics.
//!
//! Modes: `acme` orders one certificate per site from an ACME CA in
//! background tasks (`renewal.rs`, `acme.rs`); `internal` signs them with a
//! local CA (`internal.rs`); `files` serves one PEM pair, re-read on every
//! reload; `off` serves nothing. Certificates and the account key persist in
//! `storage` (`storage.rs`), so a restart reuses them without a new order.
//! Nothing here blocks the request path: handshakes read an `ArcSwap`'d map.

mod acme;
pub mod certificate;
mod handshake;
pub(crate) mod internal;
mod policy;
mod renewal;
mod resolver;
pub mod storage;
pub mod trust;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio_rustls::server::TlsStream;

use crate::config::{Config, HostPattern, TlsMode};
pub use certificate::{Certificate, CertificateError, CertificateInfo};
use handshake::Handshake;
pub use policy::{answers_plain_http, intercept, secure, Policy};
use renewal::{Issuer, Item};
use resolver::{Challenges, Resolver, Store};

/// Why TLS could not be set up or a certificate not obtained.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.cert / tls.key: {0}")]
    Files(String),
    #[error("TLS storage {path}: {source}; check that the directory in tls.storage exists or can be created and is writable by wharf")]
    Storage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local CA: {0}")]
    Ca(String),
    #[error("ACME account: {0}")]
    Account(String),
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("ACME order: {0}")]
    Order(String),
}

impl TlsError {
    /// Whether the ACME server refused because of a rate limit.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, TlsError::Acme(instant_acme::Error::Api(problem))
            if problem.r#type.as_deref().is_some_and(|t| t.ends_with(":rateLimited")))
    }
}

struct Task {
    id: String,
    abort: AbortHandle,
}

/// The TLS side of a running server; one per process, kept across reloads.
pub struct Manager {
    store: Arc<Store>,
    challenges: Arc<Challenges>,
    handshake: Handshake,
    policy: ArcSwap<Policy>,
    /// Renewal tasks by what they were started with; a reload keeps a task
    /// whose key is unchanged and replaces the others.
    tasks: Mutex<HashMap<String, Task>>,
    /// The ACME client, reused while its settings do not change.
    acme: Mutex<Option<(String, Arc<acme::Client>)>>,
    ca_path: Mutex<Option<PathBuf>>,
}

impl Default for Manager {
    fn default() -> Self {
        Manager::new()
    }
}

impl Manager {
    /// A manager serving nothing yet.
    pub fn new() -> Manager {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = Arc::new(Store::default());
        let challenges = Arc::new(Challenges::default());
        let resolver = Resolver {
            store: store.clone(),
            challenges: challenges.clone(),
        };
        Manager {
            store,
            challenges,
            handshake: Handshake::new(Arc::new(resolver)),
            policy: ArcSwap::from_pointee(Policy::default()),
            tasks: Mutex::new(HashMap::new()),
            acme: Mutex::new(None),
            ca_path: Mutex::new(None),
        }
    }

    /// Makes the served certificates follow `config`. `https_port` is the
    /// bound port of the first HTTPS listener. On error nothing changed.
    pub fn apply(&self, config: &Config, https_port: Option<u16>) -> Result<(), TlsError> {
        let tls = &config.tls;
        let hsts = tls
            .hsts
            .as_deref()
            .and_then(|v| ::http::HeaderValue::from_str(v).ok());
        let policy = Policy {
            active: tls.mode != TlsMode::Off && https_port.is_some(),
            redirect_http: tls.redirect_http,
            hsts,
            https_port: https_port.unwrap_or(443),
        };
        match tls.mode {
            TlsMode::Off => {
                self.stop_tasks(|_| true);
                self.store.retain(|_| false);
                *lock(&self.ca_path) = None;
            }
            TlsMode::Files => {
                let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
                    return Err(TlsError::Files("mode = \"files\" needs both".into()));
                };
                let certificate = load_files(cert, key)?;
                tracing::info!(
                    cert = %cert.display(),
                    names = %certificate.info.names.join(","),
                    not_after = %humantime::format_rfc3339_seconds(certificate.info.not_after),
                    "serving the certificate from files"
                );
                self.stop_tasks(|_| true);
                self.store.install("", Arc::new(certificate));
                self.store.retain(|id| id.is_empty());
                *lock(&self.ca_path) = None;
            }
            TlsMode::Internal | TlsMode::Acme => self.manage(config)?,
        }
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    /// Starts (or keeps) one renewal task per site certificate.
    fn manage(&self, config: &Config) -> Result<(), TlsError> {
        let tls = &config.tls;
        let storage = storage::Storage::new(&tls.storage);
        storage
            .check_writable()
            .map_err(|source| TlsError::Storage {
                path: tls.storage.clone(),
                source,
            })?;
        let (issuer, settings) = match tls.mode {
            TlsMode::Internal => {
                let ca = internal::LocalCa::load_or_create(&storage.internal())?;
                *lock(&self.ca_path) = Some(ca.cert_path.clone());
                let settings = format!("internal|{}", tls.storage.display());
                (Issuer::Internal(Arc::new(ca)), settings)
            }
            _ => {
                *lock(&self.ca_path) = None;
                let settings = format!(
                    "acme|{}|{:?}|{:?}|{:?}|{}",
                    tls.directory,
                    tls.directory_ca,
                    tls.email,
                    tls.challenge,
                    tls.storage.display()
                );
                let mut slot = lock(&self.acme);
                let client = match slot.as_ref() {
                    Some((key, client)) if *key == settings => client.clone(),
                    _ => {
                        let client = Arc::new(acme::Client::new(
                            &tls.directory,
                            tls.directory_ca.as_deref(),
                            tls.email.as_deref(),
                            storage.acme(&tls.directory),
                            tls.challenge,
                            self.challenges.clone(),
                        ));
                        *slot = Some((settings.clone(), client.clone()));
                        client
                    }
                };
                (Issuer::Acme(client), settings)
            }
        };
        let items = items(config);
        let keys: HashMap<String, &Item> = items
            .iter()
            .map(|item| {
                let key = format!("{settings}|{:?}|{:?}", item.names, tls.renew_before);
                (key, item)
            })
            .collect();
        self.stop_tasks(|key| !keys.contains_key(key));
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        self.store.retain(|id| ids.iter().any(|i| i == id));
        let mut tasks = lock(&self.tasks);
        for (key, item) in keys {
            if tasks.contains_key(&key) {
                continue;
            }
            let mut replace = false;
            match renewal::stored(&issuer, item) {
                Some(certificate) => {
                    tracing::info!(
                        hosts = %item.names.join(","),
                        not_after = %humantime::format_rfc3339_seconds(certificate.info.not_after),
                        "using the stored certificate"
                    );
                    self.store.install(&item.id, Arc::new(certificate));
                }
                None => {
                    // A certificate served before for other names keeps
                    // serving until the new one arrives.
                    // The local CA signs in microseconds: have the
                    // certificate before the listeners accept.
                    match &issuer {
                        Issuer::Internal(ca) => match ca.issue(&item.names) {
                            Ok(certificate) => {
                                let _ = storage::save_pair(&issuer.dir(), &item.id, &certificate);
                                self.store.install(&item.id, Arc::new(certificate));
                            }
                            // The task below retries with backoff.
                            Err(error) => {
                                tracing::warn!(hosts = %item.names.join(","), error = %error, "the local CA cannot sign yet")
                            }
                        },
                        Issuer::Acme(_) => replace = true,
                    }
                }
            }
            let handle = tokio::spawn(renewal::run(
                item.clone(),
                issuer.clone(),
                self.store.clone(),
                tls.renew_before,
                replace,
            ));
            tasks.insert(
                key,
                Task {
                    id: item.id.clone(),
                    abort: handle.abort_handle(),
                },
            );
        }
        Ok(())
    }

    fn stop_tasks(&self, stop: impl Fn(&str) -> bool) {
        lock(&self.tasks).retain(|key, task| {
            if stop(key) {
                tracing::debug!(id = %task.id, "stopping certificate management");
                task.abort.abort();
                false
            } else {
                true
            }
        });
    }

    /// The TLS handshake on an accepted connection, within `timeout`.
    /// `None` when it fails (logged at debug: scanners and clients without
    /// SNI are normal) or when it was an ACME TLS-ALPN-01 validation, which
    /// ends with the handshake. The rustls settings are in `handshake.rs`.
    pub async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Option<TlsStream<TcpStream>> {
        self.handshake.accept(stream, timeout).await
    }

    /// Hosts, expiry and issuer of every certificate served now.
    pub fn certificates(&self) -> Vec<CertificateInfo> {
        self.store.infos()
    }

    /// The HTTP-side rules of the current config.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Whether a handshake for `host` would get a certificate now.
    pub fn serves(&self, host: &str) -> bool {
        self.store.has(host)
    }

    /// The key authorization for an HTTP-01 token being validated.
    pub fn http_challenge(&self, token: &str) -> Option<String> {
        self.challenges.http(token)
    }

    /// The local CA certificate users should trust (`mode = "internal"`).
    pub fn ca_certificate(&self) -> Option<PathBuf> {
        lock(&self.ca_path).clone()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop_tasks(|_| true);
    }
}

/// Reads and checks a `mode = "files"` pair.
pub fn load_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Certificate, TlsError> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map_err(|e| TlsError::Files(format!("cannot read {}: {e}", path.display())))
    };
    let (chain, key_pem) = (read(cert)?, read(key)?);
    Certificate::from_pem(&chain, &key_pem)
        .map_err(|e| TlsError::Files(format!("{} and {}: {e}", cert.display(), key.display())))
}

/// One certificate per site: its exact hosts (ACME cannot validate
/// wildcards over HTTP-01/TLS-ALPN-01; the local CA can sign them).
fn items(config: &Config) -> Vec<Item> {
    let internal = config.tls.mode == TlsMode::Internal;
    let mut items: Vec<Item> = Vec::new();
    for site in &config.sites {
        let mut names: Vec<String> = Vec::new();
        for host in &site.hosts {
            let name = match host {
                HostPattern::Exact(name) if name.parse::<std::net::IpAddr>().is_err() => {
                    name.clone()
                }
                HostPattern::Wildcard(suffix) if internal => format!("*{suffix}"),
                _ => continue,
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let Some(id) = names.first().cloned() else {
            if !internal && config.tls.mode == TlsMode::Acme {
                tracing::warn!(
                    hosts = ?site.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                    "site has no exact host name; ACME cannot issue a certificate for it (use mode = \"files\" or \"internal\" for wildcards)"
                );
            }
            continue;
        };
        if items.iter().any(|i| i.id == id) {
            continue;
        }
        items.push(Item { id, names });
    }
    items
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
