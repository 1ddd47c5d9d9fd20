//! Zero-downtime rolling deploys: for each instance, start a new one on a
//! spare port, wait until it is healthy, put it in the pool, then drain
//! and stop the old one. A new instance that never becomes healthy stops
//! the deploy; the old instances keep serving.

use std::sync::Arc;
use std::time::Duration;

use super::{health_for, lock, AppRun, DeployError, Instance, Supervisor};
use crate::config::{App, Config};

/// A pause after the last in-flight request, for requests that were being
/// routed at the moment the instance left the pool.
const DRAIN_GRACE: Duration = Duration::from_millis(50);

fn instance_stop_timeout(supervisor: &Supervisor, app: &str) -> Duration {
    lock(&supervisor.apps)
        .get(app)
        .map_or(Duration::from_secs(10), |run| {
            run.context.config.stop_timeout
        })
}

impl Supervisor {
    /// Rolls `app` onto `new` (or its current config when `None`).
    pub(super) async fn deploy_with(
        self: &Arc<Self>,
        app: &str,
        new: Option<(App, &Config)>,
    ) -> Result<(), DeployError> {
        let gate = lock(&self.deploying)
            .entry(app.to_string())
            .or_default()
            .clone();
        let _one_at_a_time = gate.lock().await;

        let (context, old) = {
            let apps = lock(&self.apps);
            let run = apps
                .get(app)
                .ok_or_else(|| DeployError::UnknownApp(app.to_string()))?;
            (run.context.clone(), run.instances.clone())
        };
        let context = match new {
            Some((config, whole)) => {
                let mut next = self.context(app, &config, whole)?;
                if let Some(n) = Arc::get_mut(&mut next) {
                    n.health = health_for(app, whole);
                }
                next
            }
            None => context,
        };
        let target = context.config.instances as usize;
        tracing::info!(app = %app, old = old.len(), new = target, "rolling deploy started");

        for index in 0..target.max(old.len()) {
            if index < target {
                let port = self.spare_port(app, &context.config)?;
                let fresh = Instance::start(app, index as u32, port, context.clone());
                self.with_run(app, |run| run.instances.push(fresh.clone()));
                self.changed.notify_one();
                if !fresh.wait_serving(context.config.start_timeout).await {
                    fresh.stop().await;
                    self.with_run(app, |run| run.instances.retain(|i| !Arc::ptr_eq(i, &fresh)));
                    self.changed.notify_one();
                    return Err(DeployError::Unhealthy {
                        app: app.to_string(),
                        index: index as u32,
                        port,
                        timeout: context.config.start_timeout,
                    });
                }
                tracing::info!(app = %app, instance = index, port, "new instance is healthy and in the pool");
            }
            if let Some(previous) = old.get(index) {
                self.retire(app, previous).await;
            }
        }
        self.with_run(app, |run| run.context = context.clone());
        tracing::info!(app = %app, "rolling deploy finished");
        Ok(())
    }

    /// Drains one old instance (no new requests; in-flight ones finish)
    /// and stops it.
    async fn retire(&self, app: &str, instance: &Arc<Instance>) {
        instance.stop_traffic();
        // Requests already routed to it finish before the stop signal.
        let deadline = tokio::time::Instant::now() + instance_stop_timeout(self, app);
        while self.registry.in_flight(instance.addr) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Requests picked just before the flag flipped may not be counted yet.
        tokio::time::sleep(DRAIN_GRACE).await;
        instance.stop().await;
        self.with_run(app, |run| {
            run.instances.retain(|i| !Arc::ptr_eq(i, instance))
        });
        self.changed.notify_one();
        tracing::info!(app = %app, port = instance.port, "old instance drained and stopped");
    }

    fn with_run(&self, app: &str, f: impl FnOnce(&mut AppRun)) {
        if let Some(run) = lock(&self.apps).get_mut(app) {
            f(run);
        }
    }

    /// A port in `port .. port + 2*instances` that no instance uses and
    /// nothing else holds.
    fn spare_port(&self, app: &str, config: &App) -> Result<u16, DeployError> {
        let used: Vec<u16> = self.instances(app).iter().map(|i| i.port).collect();
        let first = config.port;
        let last = config
            .port
            .saturating_add((2 * config.instances).saturating_sub(1) as u16);
        (first..=last)
            .filter(|p| !used.contains(p))
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .ok_or_else(|| DeployError::NoSparePort {
                app: app.to_string(),
                first,
                last,
            })
    }
}
