//! The certificates being served, and the rustls hook that picks one for
//! each handshake by SNI.
//!
//! `Store` holds an immutable map behind `ArcSwap`: a handshake loads it once,
//! lock-free; issuing, renewing or reloading builds a new map and swaps it,
//! so new handshakes see the new certificate at once while open connections
//! keep the one they were made with. Writers (rare) take a mutex.
//!
//! `Resolver` answers TLS-ALPN-01 challenge handshakes (`acme-tls/1`) from
//! `Challenges`, then looks the SNI name up: exact, then `*.parent`, then
//! the default certificate (files mode). No match means no certificate: the
//! handshake fails cleanly with an alert, nothing else is affected. A
//! client that sends no name at all gets the default certificate, or else
//! the one of the site whose id sorts first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certificate::{Certificate, CertificateInfo};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Default)]
struct Served {
    /// By the managed item's id (a site's first host, or `""` for files mode).
    items: HashMap<String, Arc<Certificate>>,
    /// Every name of every item, lowercased; wildcards kept as `*.domain`.
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    /// For a client that names no host (an address typed into curl): the
    /// default pair, or else the item whose id sorts first, as nginx
    /// answers such a client with its default server's certificate.
    no_name: Option<Arc<CertifiedKey>>,
}

/// The certificates served now.
#[derive(Default)]
pub struct Store {
    served: ArcSwap<Served>,
    writer: Mutex<()>,
}

impl Store {
    /// Serves `certificate` for item `id` (replacing what it served before).
    /// The files-mode pair uses id `""` and also answers unknown names.
    pub fn install(&self, id: &str, certificate: Arc<Certificate>) {
        self.update(|items| {
            items.insert(id.to_string(), certificate);
        });
    }

    /// Keeps only the items `keep` says yes to.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.update(|items| items.retain(|id, _| keep(id)));
    }

    pub fn get(&self, id: &str) -> Option<Arc<Certificate>> {
        self.served.load().items.get(id).cloned()
    }

    /// Whether a handshake for `host` would find a certificate now.
    pub fn has(&self, host: &str) -> bool {
        self.lookup(host).is_some()
    }

    /// Facts about every certificate served, sorted by host.
    pub fn infos(&self) -> Vec<CertificateInfo> {
        let mut infos: Vec<CertificateInfo> = self
            .served
            .load()
            .items
            .values()
            .map(|c| c.info.clone())
            .collect();
        infos.sort_by(|a, b| a.host.cmp(&b.host));
        infos
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<String, Arc<Certificate>>)) {
        let _one_writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut items = self.served.load().items.clone();
        change(&mut items);
        let mut by_name = HashMap::new();
        let mut default = None;
        let mut first: Option<(&String, &Arc<Certificate>)> = None;
        for (id, certificate) in &items {
            if id.is_empty() {
                default = Some(certificate.key.clone());
            } else if first.is_none_or(|(first, _)| id < first) {
                first = Some((id, certificate));
            }
            for name in &certificate.info.names {
                by_name.insert(name.to_ascii_lowercase(), certificate.key.clone());
            }
        }
        let no_name = default
            .clone()
            .or_else(|| first.map(|(_, certificate)| certificate.key.clone()));
        self.served.store(Arc::new(Served {
            items,
            by_name,
            default,
            no_name,
        }));
    }

    /// The certificate for a handshake without SNI.
    fn for_no_name(&self) -> Option<Arc<CertifiedKey>> {
        self.served.load().no_name.clone()
    }

    fn lookup(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let served = self.served.load();
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(key) = served.by_name.get(&host) {
            return Some(key.clone());
        }
        if let Some((_, parent)) = host.split_once('.') {
            if let Some(key) = served.by_name.get(&format!("*.{parent}")) {
                return Some(key.clone());
            }
        }
        served.default.clone()
    }
}

/// Challenge answers while an order is being validated.
#[derive(Default)]
pub struct Challenges {
    /// HTTP-01: token → key authorization.
    http: Mutex<HashMap<String, String>>,
    /// TLS-ALPN-01: host → self-signed certificate with the acmeIdentifier.
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    pub fn set_http(&self, token: &str, key_authorization: &str) {
        lock(&self.http).insert(token.to_string(), key_authorization.to_string());
    }

    pub fn http(&self, token: &str) -> Option<String> {
        lock(&self.http).get(token).cloned()
    }

    pub fn remove_http(&self, token: &str) {
        lock(&self.http).remove(token);
    }

    pub fn set_alpn(&self, host: &str, key: Arc<CertifiedKey>) {
        lock(&self.alpn).insert(host.to_ascii_lowercase(), key);
    }

    pub fn remove_alpn(&self, host: &str) {
        lock(&self.alpn).remove(&host.to_ascii_lowercase());
    }

    fn alpn(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        lock(&self.alpn).get(&host.to_ascii_lowercase()).cloned()
    }
}

/// The rustls certificate hook.
#[derive(Clone)]
pub struct Resolver {
    pub store: Arc<Store>,
    pub challenges: Arc<Challenges>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_string);
        let is_challenge = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if is_challenge {
            return name.and_then(|n| self.challenges.alpn(&n));
        }
        match name {
            Some(name) => self.store.lookup(&name),
            None => self.store.for_no_name(),
        }
    }
}

/// Locks a map that is never held across an await.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(names: &[&str]) -> Arc<Certificate> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let generated = rcgen::generate_simple_self_signed(names).expect("generate");
        let pair = Certificate::from_pem(
            &generated.cert.pem(),
            &generated.signing_key.serialize_pem(),
        );
        Arc::new(pair.expect("pair"))
    }

    #[test]
    fn names_match_exactly_then_by_one_wildcard_level() {
        let store = Store::default();
        store.install("a.test", certificate(&["a.test", "*.w.test"]));
        assert!(store.has("a.test"));
        assert!(
            store.has("A.Test."),
            "case and a trailing dot do not matter"
        );
        assert!(store.has("x.w.test"));
        assert!(!store.has("y.x.w.test"), "a wildcard covers one label");
        assert!(!store.has("w.test"));
        assert!(!store.has("b.test"));
    }

    #[test]
    fn the_files_pair_answers_every_name_and_items_come_and_go() {
        let store = Store::default();
        store.install("a.test", certificate(&["a.test"]));
        store.install("", certificate(&["files.test"]));
        assert!(store.has("anything.example"));
        store.retain(|id| id == "a.test");
        assert!(!store.has("anything.example"));
        assert!(store.has("a.test"));
        assert_eq!(store.infos().len(), 1);
        assert_eq!(store.infos()[0].host, "a.test");
    }

    #[test]
    fn a_client_naming_no_host_gets_the_default_pair_or_the_first_site() {
        let store = Store::default();
        assert!(store.for_no_name().is_none());
        let b = certificate(&["b.test"]);
        let a = certificate(&["a.test"]);
        store.install("b.test", b.clone());
        store.install("a.test", a.clone());
        let chosen = store.for_no_name().expect("a certificate");
        assert!(Arc::ptr_eq(&chosen, &a.key), "the id that sorts first");
        let files = certificate(&["files.test"]);
        store.install("", files.clone());
        let chosen = store.for_no_name().expect("a certificate");
        assert!(Arc::ptr_eq(&chosen, &files.key), "the files pair first");
        store.retain(|id| id == "b.test");
        let chosen = store.for_no_name().expect("a certificate");
        assert!(Arc::ptr_eq(&chosen, &b.key));
    }
}
