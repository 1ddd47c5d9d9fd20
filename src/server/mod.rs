//! The running server: the current snapshot, the listeners, reload and
//! graceful shutdown.
//!
//! `Server::start` binds every listener (failing with a clear message if
//! one is taken) and the admin API. `reload` loads and checks the config
//! again; only a config that fully builds (snapshot and new listeners) is
//! swapped in, atomically, and in-flight requests keep the snapshot they
//! started with. `shutdown` stops accepting and waits for open connections
//! up to `shutdown_timeout`.

pub(crate) mod conn;
pub mod holder;
pub mod listener;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{watch, Notify};

use crate::balance::state::Registry;
use crate::config::{self, Config, ConfigErrors};
use crate::observe::{admin, logging};
use crate::proxy::client::ClientCache;
use crate::snapshot::{BuildError, Snapshot};
use crate::supervise::{DeployError, InstanceInfo, Supervisor};
use crate::tls;

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

/// Counts open client connections so shutdown can wait for them.
#[derive(Default)]
pub struct Connections {
    open: AtomicUsize,
    all_closed: Notify,
}

/// One open connection, counted until dropped. It owns its handle, so a
/// connection's future holds it without borrowing the server.
pub struct ConnectionGuard(Arc<Connections>);

impl Connections {
    fn enter(self: &Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    async fn wait_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
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

    /// Reopens the access log file by its path (SIGUSR1, and every
    /// reload), so a log rotated away is replaced by a new file. The
    /// outcome is logged; a failure leaves the old file in use.
    pub fn reopen_logs(&self) {
        match self.snapshot().access.reopen() {
            Ok(Some(path)) => tracing::info!(path = %path.display(), "access log reopened"),
            Ok(None) => {}
            Err(error) => tracing::error!(error = %error, "access log not reopened"),
        }
    }

    /// Reads the config again and swaps it in if it is entirely good.
    /// The access log file is reopened first, whatever becomes of the
    /// new config (logrotate's `kill -HUP` must not depend on it).
    pub async fn reload(self: &Arc<Self>) -> Result<(), Error> {
        let _one_at_a_time = self.reloading.lock().await;
        self.reopen_logs();
        let result = self.try_reload();
        crate::observe::metrics::global().reloaded(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(source = %self.source_name(), "config reloaded"),
            Err(error) => tracing::error!(
                source = %self.source_name(),
                error = %error,
                "config reload rejected; the previous config keeps serving"
            ),
        }
        result
    }

    fn try_reload(self: &Arc<Self>) -> Result<(), Error> {
        let config = self.source.load()?;
        let old = self.snapshot();
        if config.server.admin != old.config.server.admin {
            tracing::warn!("server.admin changed; the admin API moves only on restart");
        }
        self.supervisor.start_new(&config)?;
        let snapshot = Snapshot::build(
            config,
            &self.clients,
            &self.registry,
            &self.supervisor,
            Some(&old),
        )?;
        let wanted = snapshot.config.server.listen.clone();
        let mut listeners = lock(&self.listeners);
        // Bind new addresses before anything changes, so a taken port
        // rejects the whole reload.
        let mut added = Vec::new();
        for addr in wanted.iter().filter(|a| !listeners.contains_key(a)) {
            added.push((*addr, listener::bind(*addr)?));
        }
        let https_wanted = snapshot.config.server.https.clone();
        let mut added_https = Vec::new();
        for addr in https_wanted.iter() {
            if !listeners.get(addr).is_some_and(|h| h.https) {
                added_https.push((*addr, listener::bind(*addr)?));
            }
        }
        let first_https = https_wanted
            .first()
            .and_then(|addr| match listeners.get(addr) {
                Some(handle) if handle.https => Some(handle.local.port()),
                _ => added_https
                    .iter()
                    .find(|(a, _)| a == addr)
                    .and_then(|(_, tcp)| tcp.local_addr().ok())
                    .map(|a| a.port()),
            });
        self.tls.apply(&snapshot.config, first_https)?;
        logging::set_level(&snapshot.config.log.level);
        let snapshot = Arc::new(snapshot);
        self.current.store(snapshot.clone());
        old.retire();
        snapshot.activate(&self.registry);
        listeners.retain(|addr, handle| match handle.https {
            true => https_wanted.contains(addr),
            false => wanted.contains(addr),
        });
        for (addr, tcp) in added {
            listeners.insert(addr, listener::spawn(tcp, self.clone()));
        }
        for (addr, tcp) in added_https {
            listeners.insert(addr, listener::spawn_https(tcp, self.clone()));
        }
        self.supervisor.apply_changes(&snapshot.config);
        Ok(())
    }

    /// Rebuilds the snapshot from the current config whenever app
    /// instances come or go, so upstream pools follow them.
    fn follow_instances(self: &Arc<Self>) {
        let server = Arc::downgrade(self);
        let supervisor = self.supervisor.clone();
        tokio::spawn(async move {
            loop {
                supervisor.changed.notified().await;
                let Some(server) = server.upgrade() else {
                    return;
                };
                let _one_at_a_time = server.reloading.lock().await;
                let old = server.snapshot();
                let config = (*old.config).clone();
                match Snapshot::build(
                    config,
                    &server.clients,
                    &server.registry,
                    &server.supervisor,
                    Some(&old),
                ) {
                    Ok(snapshot) => {
                        let snapshot = Arc::new(snapshot);
                        server.current.store(snapshot.clone());
                        old.retire();
                        snapshot.activate(&server.registry);
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "cannot rebuild routes after an instance change")
                    }
                }
            }
        });
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

    fn source_name(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Embedded { name, .. } => name.clone(),
        }
    }

    /// A receiver that changes when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether shutdown has begun.
    pub fn closing(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Completes when shutdown begins after this was called; check
    /// [`Server::closing`] once it exists, for a shutdown that began before.
    pub fn closing_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.closing.notified()
    }

    /// Stops accepting, asks every connection to finish, and waits up to
    /// `shutdown_timeout`. Returns the number of connections cut off.
    pub async fn shutdown(&self) -> usize {
        let timeout: Duration = self.snapshot().config.server.shutdown_timeout;
        self.shutdown.send_replace(true);
        self.closing.notify_waiters();
        lock(&self.listeners).clear();
        tracing::info!(open_connections = self.connections.open(), timeout = ?timeout, "shutting down");
        let mut left = 0;
        if tokio::time::timeout(timeout, self.connections.wait_closed())
            .await
            .is_err()
        {
            left = self.connections.open();
            tracing::warn!(
                open_connections = left,
                "shutdown timeout reached; closing the rest"
            );
        }
        // Apps stop last: in-flight requests to them have finished above.
        self.supervisor.stop_all().await;
        left
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
