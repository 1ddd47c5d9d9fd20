//! Supervision of the app's own processes: N instances per `[app.NAME]`,
//! each on its own port with `PORT` set, restarted with backoff, output
//! captured, limits applied, and replaced one by one on deploy.
//!
//! In: the `[app.*]` sections (at start and on every reload) and deploy
//! requests. Out: the live instances of each app, which `Snapshot::build`
//! turns into the members of upstreams that say `app = "NAME"`. Whenever
//! the set of instances changes, `changed` fires and the server rebuilds
//! its snapshot from the current config.

mod deploy;
pub mod instance;
pub mod limits;
mod output;
pub mod preflight;
mod spawn;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::balance::state::Registry;
use crate::config::{App, Config, HealthCheck};
pub use instance::{Instance, InstanceInfo};

/// Why a deploy failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("no app named {0:?}; check the [app.*] sections of the config")]
    UnknownApp(String),
    #[error("new instance {index} of {app} on port {port} did not become healthy within {timeout:?}; the old instances keep serving")]
    Unhealthy {
        app: String,
        index: u32,
        port: u16,
        timeout: std::time::Duration,
    },
    #[error("no free port for a new instance of {app} in {first}..={last}; stop whatever holds them or change app.{app}.port")]
    NoSparePort { app: String, first: u16, last: u16 },
    #[error("cannot open the log of app {app}: {source}")]
    Log { app: String, source: std::io::Error },
}

/// One supervised app.
struct AppRun {
    context: Arc<instance::Context>,
    instances: Vec<Arc<Instance>>,
}

/// All supervised apps.
pub struct Supervisor {
    apps: Mutex<BTreeMap<String, AppRun>>,
    /// One deploy per app at a time.
    deploying: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    backend: limits::Backend,
    registry: Arc<Registry>,
    /// Fires when instances were added or removed.
    pub changed: Notify,
}

impl Supervisor {
    pub fn new(registry: Arc<Registry>) -> Supervisor {
        Supervisor {
            apps: Mutex::new(BTreeMap::new()),
            deploying: Mutex::new(HashMap::new()),
            backend: limits::detect(true),
            registry,
            changed: Notify::new(),
        }
    }

    /// How limits are enforced here.
    pub fn limits(&self) -> &limits::Backend {
        &self.backend
    }

    /// Addresses and serving flags of `app`'s instances, for its pool.
    pub fn members(
        &self,
        app: &str,
    ) -> Vec<(std::net::SocketAddr, Arc<std::sync::atomic::AtomicBool>)> {
        self.instances(app)
            .iter()
            .map(|i| (i.addr, i.serving_flag()))
            .collect()
    }

    /// The live instances of `app`, for building its upstream pool.
    pub fn instances(&self, app: &str) -> Vec<Arc<Instance>> {
        lock(&self.apps)
            .get(app)
            .map(|run| run.instances.clone())
            .unwrap_or_default()
    }

    /// Whether at least one instance of `app` is serving (started and
    /// passing its readiness check).
    pub fn serving(&self, app: &str) -> bool {
        self.instances(app).iter().any(|i| i.is_serving())
    }

    /// Every instance of every app, for the admin API and status page.
    pub fn info(&self) -> Vec<InstanceInfo> {
        lock(&self.apps)
            .values()
            .flat_map(|run| run.instances.iter().map(|i| i.info()))
            .collect()
    }

    /// Starts apps that are new in `config`. Called before the snapshot
    /// that refers to them is built, so their upstreams have members.
    pub fn start_new(self: &Arc<Self>, config: &Config) -> Result<(), DeployError> {
        for (name, app) in &config.apps {
            if lock(&self.apps).contains_key(name) {
                continue;
            }
            let context = self.context(name, app, config)?;
            tracing::info!(app = %name, instances = app.instances, limits = self.backend.describe(), "starting app");
            if app.cpu_limit.is_some() && !self.backend.enforces_cpu() {
                tracing::warn!(app = %name, "cpu_limit cannot be enforced on this machine ({})", self.backend.describe());
            }
            let instances = (0..app.instances)
                .map(|i| Instance::start(name, i, app.port + i as u16, context.clone()))
                .collect();
            lock(&self.apps).insert(name.clone(), AppRun { context, instances });
        }
        Ok(())
    }

    /// After a reload: deploys apps whose section changed, stops removed
    /// ones. Runs in the background; results are logged.
    pub fn apply_changes(self: &Arc<Self>, config: &Config) {
        let current: Vec<(String, App)> = lock(&self.apps)
            .iter()
            .map(|(name, run)| (name.clone(), run.context.config.clone()))
            .collect();
        for (name, old) in current {
            match config.apps.get(&name) {
                None => {
                    let supervisor = self.clone();
                    tokio::spawn(async move { supervisor.remove(&name).await });
                }
                Some(new) => {
                    let health = health_for(&name, config);
                    let changed_health = lock(&self.apps)
                        .get(&name)
                        .is_some_and(|run| run.context.health != health);
                    if *new != old || changed_health {
                        let supervisor = self.clone();
                        let (new, config) = (new.clone(), config.clone());
                        tokio::spawn(async move {
                            match supervisor.deploy_with(&name, Some((new, &config))).await {
                                Ok(()) => {
                                    tracing::info!(app = %name, "deploy after reload finished")
                                }
                                Err(error) => {
                                    tracing::error!(app = %name, error = %error, "deploy after reload failed")
                                }
                            }
                        });
                    }
                }
            }
        }
    }

    fn context(
        &self,
        name: &str,
        app: &App,
        config: &Config,
    ) -> Result<Arc<instance::Context>, DeployError> {
        let sink = output::Sink::open(&app.log).map_err(|source| DeployError::Log {
            app: name.to_string(),
            source,
        })?;
        Ok(Arc::new(instance::Context {
            config: app.clone(),
            backend: self.backend.clone(),
            sink: Arc::new(sink),
            health: health_for(name, config),
            registry: self.registry.clone(),
        }))
    }

    /// Replaces every instance of `app` one at a time (same config).
    pub async fn deploy(self: &Arc<Self>, app: &str) -> Result<(), DeployError> {
        self.deploy_with(app, None).await
    }

    async fn remove(&self, app: &str) {
        let run = lock(&self.apps).remove(app);
        self.changed.notify_one();
        if let Some(run) = run {
            tracing::info!(app = %app, "app removed from the config; stopping its instances");
            let stops = run.instances.iter().map(|i| i.stop());
            futures_util::future::join_all(stops).await;
        }
    }

    /// Stops every instance of every app (wharf is shutting down).
    pub async fn stop_all(&self) {
        let runs: Vec<AppRun> = std::mem::take(&mut *lock(&self.apps))
            .into_values()
            .collect();
        let stops = runs
            .iter()
            .flat_map(|run| run.instances.iter().map(|i| i.stop()));
        futures_util::future::join_all(stops).await;
    }
}

/// The health check of the first upstream serving `app`, used to decide
/// when a new instance is ready.
fn health_for(app: &str, config: &Config) -> Option<HealthCheck> {
    config
        .upstreams
        .values()
        .find(|u| u.app.as_deref() == Some(app))
        .and_then(|u| u.health.clone())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
