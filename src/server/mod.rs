//! The running server: the current snapshot, the listeners, reload and
//! graceful shutdown.
//!
//! `Server::start` binds every listener (failing with a clear message if
//! one is taken) and the admin API. `reload` loads and checks the config
//! again; only a config that fully builds (snapshot and new listeners) is
//! swapped in, atomically, and in-flight requests keep the snapshot they
//! started with. `shutdown` stops accepting and waits for open connections
//! up to `shutdown_timeout`.
//! Reloading is in `reload.rs`; shutdown and the connection count it
//! waits on are in `shutdown.rs`.

pub(crate) mod conn;
pub mod holder;
pub mod listener;
mod reload;
mod shutdown;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::{watch, Notify};

use crate::balance::state::Registry;
use crate::config::{self, Config, ConfigErrors};
use crate::observe::admin;
use crate::proxy::client::ClientCache;
use crate::snapshot::{BuildError, Snapshot};
use crate::supervise::{DeployError, InstanceInfo, Supervisor};
use crate::tls;

pub use shutdown::{ConnectionGuard, Connections};

/// Where the configuration comes from, so a reload can read it again.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// A config held in memory (the embedded demo), with extra variables
    /// for its `${...}` placeholders.
    Embedded {
        name: String,
        text: String,
        vars: Vec<(String, String)>,
    },
}

impl Source {
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        match self {
            Source::File(path) => config::load(path),
            Source::Embedded { name, text, vars } => {
                let lookup = |key: &str| {
                    vars.iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                        .or_else(|| std::env::var(key).ok())
                };
                let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                config::parse(text, name, &base, &lookup)
            }
        }
    }
}

/// Why starting or reloading failed. The old config keeps serving on a
/// failed reload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error("{0}")]
    Bind(#[from] listener::BindError),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Apps(#[from] DeployError),
}

/// The running wharf.
pub struct Server {
    source: Source,
    current: ArcSwap<Snapshot>,
    clients: ClientCache,
    /// Upstream server state kept across reloads.
    registry: Arc<Registry>,
    /// The app instances wharf runs.
    supervisor: Arc<Supervisor>,
    /// Certificates for the HTTPS listeners; kept across reloads.
    pub(crate) tls: tls::Manager,
    /// Listeners by configured address (a configured port 0 stays 0 here).
    listeners: Mutex<HashMap<SocketAddr, listener::Handle>>,
    /// One reload at a time (SIGHUP and the admin API may race).
    reloading: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
    /// Wakes idle fast-path connections when shutdown begins (lighter to
    /// wait on than a `watch` receiver, for every idle connection).
    closing: Notify,
    connections: Arc<Connections>,
    ready: AtomicBool,
    admin: Mutex<Option<SocketAddr>>,
}

impl Server {
    /// Loads nothing: takes a checked config, builds the first snapshot,
    /// binds every listener and the admin API.
    pub async fn start(config: Config, source: Source) -> Result<Arc<Server>, Error> {
        let clients = ClientCache::default();
        let registry = Arc::new(Registry::default());
        Registry::spawn_sweeper(&registry);
        let supervisor = Arc::new(Supervisor::new(registry.clone()));
        supervisor.start_new(&config)?;
        let snapshot = match Snapshot::build(config, &clients, &registry, &supervisor, None) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                supervisor.stop_all().await;
                return Err(error.into());
            }
        };
        let listen = snapshot.config.server.listen.clone();
        let admin_addr = snapshot.config.server.admin;
        let bind_all = || -> Result<_, listener::BindError> {
            let mut bound = Vec::with_capacity(listen.len());
            for addr in &listen {
                bound.push((*addr, listener::bind(*addr)?));
            }
            let admin_listener = match admin_addr {
                Some(addr) => Some(listener::bind(addr)?),
                None => None,
            };
            Ok((bound, admin_listener))
        };
        let (bound, admin_listener) = match bind_all() {
            Ok(bound) => bound,
            Err(error) => {
                supervisor.stop_all().await;
                return Err(error.into());
            }
        };
        // HTTPS listeners, and their certificates before the first handshake.
        let (https_bound, tls) = match start_tls(&snapshot.config) {
            Ok(started) => started,
            Err(error) => {
                supervisor.stop_all().await;
                return Err(error);
            }
        };
        let server = Arc::new(Server {
            source,
            current: ArcSwap::from_pointee(snapshot),
            clients,
            registry,
            supervisor,
            tls,
            listeners: Mutex::new(HashMap::new()),
            reloading: tokio::sync::Mutex::new(()),
            shutdown: watch::channel(false).0,
            closing: Notify::new(),
            connections: Arc::default(),
            ready: AtomicBool::new(false),
            admin: Mutex::new(None),
        });
        {
            let mut listeners = lock(&server.listeners);
            for (addr, tcp) in bound {
                listeners.insert(addr, listener::spawn(tcp, server.clone()));
            }
            for (addr, tcp) in https_bound {
                listeners.insert(addr, listener::spawn_https(tcp, server.clone()));
            }
        }
        if let Some(tcp) = admin_listener {
            let local = tcp.local_addr().ok();
            *lock(&server.admin) = local;
            admin::spawn(tcp, server.clone());
        }
        server.snapshot().activate(&server.registry);
        server.follow_instances();
        crate::observe::metrics::global().loaded_now();
        server.ready.store(true, Ordering::Release);
        Ok(server)
    }

    /// The snapshot requests read now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Plain-HTTP addresses actually bound (port 0 resolved), in no particular order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let listeners = lock(&self.listeners);
        listeners
            .values()
            .filter(|h| !h.https)
            .map(|h| h.local)
            .collect()
    }

    /// HTTPS addresses actually bound, in no particular order.
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        let listeners = lock(&self.listeners);
        listeners
            .values()
            .filter(|h| h.https)
            .map(|h| h.local)
            .collect()
    }

    /// Hosts, expiry and issuer of every certificate served now.
    pub fn certificates(&self) -> Vec<tls::CertificateInfo> {
        self.tls.certificates()
    }

    /// The local CA certificate to trust, when `[tls] mode = "internal"`.
    pub fn ca_certificate(&self) -> Option<PathBuf> {
        self.tls.ca_certificate()
    }

    /// The admin API's bound address, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        *lock(&self.admin)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !*self.shutdown.borrow()
    }

    /// Apps that an upstream proxies to and that have no instance serving
    /// yet (or any more): while there is one, requests routed to it would
    /// get 502 or 503, so `/readyz` says not ready.
    pub fn apps_not_serving(&self) -> Vec<String> {
        let snapshot = self.snapshot();
        let mut waiting: Vec<String> = snapshot
            .config
            .upstreams
            .values()
            .filter_map(|upstream| upstream.app.as_deref())
            .filter(|app| !self.supervisor.serving(app))
            .map(str::to_string)
            .collect();
        waiting.sort();
        waiting.dedup();
        waiting
    }

    /// Rolling deploy of one app (see `supervise::deploy`).
    pub async fn deploy(&self, app: &str) -> Result<(), DeployError> {
        self.supervisor.deploy(app).await
    }

    /// Every supervised instance, for the admin API and status page.
    pub fn instances(&self) -> Vec<InstanceInfo> {
        self.supervisor.info()
    }

    /// How resource limits are enforced for apps.
    pub fn limits(&self) -> &crate::supervise::limits::Backend {
        self.supervisor.limits()
    }
}

/// Locks a mutex that is never held across an await; a poisoned one still
/// holds consistent data (every critical section is a single map update).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Binds the HTTPS listeners and loads or starts their certificates.
fn start_tls(
    config: &Config,
) -> Result<(Vec<(SocketAddr, tokio::net::TcpListener)>, tls::Manager), Error> {
    let mut bound = Vec::with_capacity(config.server.https.len());
    for addr in &config.server.https {
        bound.push((*addr, listener::bind(*addr)?));
    }
    let first_port = bound
        .first()
        .and_then(|(_, tcp)| tcp.local_addr().ok())
        .map(|a| a.port());
    let manager = tls::Manager::new();
    manager.apply(config, first_port)?;
    Ok((bound, manager))
}
