//! The running server: the current snapshot, the listeners, reload and
//! graceful shutdown.
//!
//! `Server::start` binds every listener (failing with a clear message if
//! one is taken) and the admin API. `reload` loads and checks the config
//! again; only a config that fully builds (snapshot and new listeners) is
//! swapped in, atomically, and in-flight requests keep the snapshot they
//! started with. `shutdown` stops accepting and waits for open connections
//! up to `shutdown_timeout`.

mod conn;
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

use crate::config::{self, Config, ConfigErrors};
use crate::observe::{admin, logging};
use crate::balance::state::Registry;
use crate::proxy::client::ClientCache;
use crate::snapshot::{BuildError, Snapshot};

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
}

/// Counts open client connections so shutdown can wait for them.
#[derive(Default)]
pub struct Connections {
    open: AtomicUsize,
    all_closed: Notify,
}

pub struct ConnectionGuard<'a>(&'a Connections);

impl Connections {
    fn enter(&self) -> ConnectionGuard<'_> {
        self.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self)
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

impl Drop for ConnectionGuard<'_> {
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
    registry: Registry,
    /// Listeners by configured address (a configured port 0 stays 0 here).
    listeners: Mutex<HashMap<SocketAddr, listener::Handle>>,
    /// One reload at a time (SIGHUP and the admin API may race).
    reloading: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
    connections: Connections,
    ready: AtomicBool,
    admin: Mutex<Option<SocketAddr>>,
}

impl Server {
    /// Loads nothing: takes a checked config, builds the first snapshot,
    /// binds every listener and the admin API.
    pub async fn start(config: Config, source: Source) -> Result<Arc<Server>, Error> {
        let clients = ClientCache::default();
        let registry = Registry::default();
        let snapshot = Snapshot::build(config, &clients, &registry, None)?;
        let listen = snapshot.config.server.listen.clone();
        let admin_addr = snapshot.config.server.admin;
        let mut bound = Vec::with_capacity(listen.len());
        for addr in &listen {
            bound.push((*addr, listener::bind(*addr)?));
        }
        let admin_listener = match admin_addr {
            Some(addr) => Some(listener::bind(addr)?),
            None => None,
        };
        let server = Arc::new(Server {
            source,
            current: ArcSwap::from_pointee(snapshot),
            clients,
            registry,
            listeners: Mutex::new(HashMap::new()),
            reloading: tokio::sync::Mutex::new(()),
            shutdown: watch::channel(false).0,
            connections: Connections::default(),
            ready: AtomicBool::new(false),
            admin: Mutex::new(None),
        });
        {
            let mut listeners = lock(&server.listeners);
            for (addr, tcp) in bound {
                listeners.insert(addr, listener::spawn(tcp, server.clone()));
            }
        }
        if let Some(tcp) = admin_listener {
            let local = tcp.local_addr().ok();
            *lock(&server.admin) = local;
            admin::spawn(tcp, server.clone());
        }
        server.snapshot().activate(&server.registry);
        crate::observe::metrics::global().loaded_now();
        server.ready.store(true, Ordering::Release);
        Ok(server)
    }

    /// The snapshot requests read now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Addresses actually bound (port 0 resolved), in no particular order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.listeners).values().map(|h| h.local).collect()
    }

    /// The admin API's bound address, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        *lock(&self.admin)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !*self.shutdown.borrow()
    }

    /// Reads the config again and swaps it in if it is entirely good.
    pub async fn reload(self: &Arc<Self>) -> Result<(), Error> {
        let _one_at_a_time = self.reloading.lock().await;
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
        let snapshot = Snapshot::build(config, &self.clients, &self.registry, Some(&old))?;
        let wanted = snapshot.config.server.listen.clone();
        let mut listeners = lock(&self.listeners);
        // Bind new addresses before anything changes, so a taken port
        // rejects the whole reload.
        let mut added = Vec::new();
        for addr in wanted.iter().filter(|a| !listeners.contains_key(a)) {
            added.push((*addr, listener::bind(*addr)?));
        }
        logging::set_level(&snapshot.config.log.level);
        let snapshot = Arc::new(snapshot);
        self.current.store(snapshot.clone());
        old.retire();
        snapshot.activate(&self.registry);
        listeners.retain(|addr, _| wanted.contains(addr));
        for (addr, tcp) in added {
            listeners.insert(addr, listener::spawn(tcp, self.clone()));
        }
        Ok(())
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

    /// Stops accepting, asks every connection to finish, and waits up to
    /// `shutdown_timeout`. Returns the number of connections cut off.
    pub async fn shutdown(&self) -> usize {
        let timeout: Duration = self.snapshot().config.server.shutdown_timeout;
        self.shutdown.send_replace(true);
        lock(&self.listeners).clear();
        tracing::info!(open_connections = self.connections.open(), timeout = ?timeout, "shutting down");
        if tokio::time::timeout(timeout, self.connections.wait_closed())
            .await
            .is_err()
        {
            let left = self.connections.open();
            tracing::warn!(
                open_connections = left,
                "shutdown timeout reached; closing the rest"
            );
            return left;
        }
        0
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
