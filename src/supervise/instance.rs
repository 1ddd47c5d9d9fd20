//! One app instance: its process, restarted with exponential backoff when
//! it exits, and whether it may take traffic.
//!
//! The lifecycle task owns the child process. It marks the instance ready
//! (in the pool) once its port answers (the probe is in
//! `instance/ready.rs`), and unready the moment the process exits, so the
//! balancer stops sending to it at once. A stop request drains nothing by
//! itself: the deploy code stops traffic first, then calls `stop`, which
//! sends the stop signal and SIGKILL after `stop_timeout`.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::limits::{self, Backend};
use super::output::{self, Origin, Sink};
use super::spawn::{self, Rlimits};
use crate::config::{App, HealthCheck, Restart};

mod ready;

use ready::probe_until_ready;

/// An instance counts as having run "healthy for a while" (and its backoff
/// is reset) after this long.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// What an instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Starting,
    Running,
    Backoff,
    Stopping,
    Stopped,
    Exited,
}

/// A supervised instance.
#[derive(Debug)]
pub struct Instance {
    pub app: String,
    pub index: u32,
    pub port: u16,
    pub addr: SocketAddr,
    pid: AtomicU32,
    state: Mutex<(State, Option<Instant>)>,
    restarts: AtomicU32,
    /// True while the process is up and answering: the pool reads this.
    serving: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    stopped: watch::Sender<bool>,
}

/// A point-in-time view of an instance, for the admin API and status page.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceInfo {
    pub app: String,
    pub index: u32,
    pub port: u16,
    /// Where it listens: the address its upstream members carry.
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    pub state: State,
    pub uptime_seconds: Option<u64>,
    pub restarts: u32,
    pub serving: bool,
}

/// What the lifecycle task needs besides the instance itself.
pub struct Context {
    pub config: App,
    pub backend: Backend,
    pub sink: Arc<Sink>,
    pub health: Option<HealthCheck>,
    /// Upstream server state: in-flight counts and past failures by address.
    pub registry: Arc<crate::balance::state::Registry>,
}

impl Instance {
    /// Starts the instance's lifecycle task.
    pub fn start(app: &str, index: u32, port: u16, context: Arc<Context>) -> Arc<Instance> {
        let instance = Arc::new(Instance {
            app: app.to_string(),
            index,
            port,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pid: AtomicU32::new(0),
            state: Mutex::new((State::Starting, None)),
            restarts: AtomicU32::new(0),
            serving: Arc::new(AtomicBool::new(false)),
            stop: watch::channel(false).0,
            stopped: watch::channel(false).0,
        });
        tokio::spawn(lifecycle(instance.clone(), context));
        instance
    }

    /// The flag the balancer checks before sending a request here.
    pub fn serving_flag(&self) -> Arc<AtomicBool> {
        self.serving.clone()
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Takes the instance out of rotation (in-flight requests go on).
    pub fn stop_traffic(&self) {
        self.serving.store(false, Ordering::Release);
    }

    pub fn state(&self) -> State {
        lock(&self.state).0
    }

    fn set_state(&self, state: State) {
        let mut guard = lock(&self.state);
        let since = match state {
            State::Starting => Some(Instant::now()),
            State::Running => guard.1,
            _ => None,
        };
        *guard = (state, since);
    }

    pub fn info(&self) -> InstanceInfo {
        let (state, since) = *lock(&self.state);
        let pid = self.pid.load(Ordering::Relaxed);
        InstanceInfo {
            app: self.app.clone(),
            index: self.index,
            port: self.port,
            addr: self.addr,
            pid: (pid != 0).then_some(pid),
            state,
            uptime_seconds: since.map(|t| t.elapsed().as_secs()),
            restarts: self.restarts.load(Ordering::Relaxed),
            serving: self.is_serving(),
        }
    }

    /// Waits until the instance answers on its port (or exits for good,
    /// or `timeout` passes). True when it is serving.
    pub async fn wait_serving(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.is_serving() {
                return true;
            }
            if matches!(self.state(), State::Exited | State::Stopped) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.is_serving()
    }

    /// Stops the process: stop signal, then SIGKILL after `stop_timeout`.
    /// Returns once it has exited.
    pub async fn stop(&self) {
        self.stop_traffic();
        self.stop.send_replace(true);
        let mut stopped = self.stopped.subscribe();
        let _ = stopped.wait_for(|done| *done).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Runs, watches and restarts the process until stopped.
async fn lifecycle(instance: Arc<Instance>, context: Arc<Context>) {
    let config = &context.config;
    let mut stop = instance.stop.subscribe();
    let mut delay = config.backoff;
    let cgroup_name = format!("{}-{}-{}", instance.app, instance.index, instance.port);
    let cgroups = match limits::prepare(&context.backend, config, &cgroup_name) {
        Ok(cgroups) => cgroups,
        Err(error) => {
            tracing::warn!(app = %instance.app, instance = instance.index, error = %error, "cannot create cgroup; limits fall back to rlimits");
            limits::Cgroups::default()
        }
    };
    let rlimits = Rlimits {
        open_files: config.open_files,
        address_space: if cgroups.limits_memory() {
            None
        } else {
            config.memory_limit
        },
    };
    loop {
        if *stop.borrow() {
            break;
        }
        instance.set_state(State::Starting);
        let started = Instant::now();
        let mut child = match spawn::spawn(&instance.app, config, instance.port, rlimits) {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(app = %instance.app, instance = instance.index, command = ?config.command, error = %error, "cannot start instance");
                if !wait_backoff(&instance, &mut stop, &mut delay, config, started).await {
                    break;
                }
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        instance.pid.store(pid, Ordering::Relaxed);
        if let Err(error) = cgroups.attach(pid) {
            tracing::warn!(app = %instance.app, instance = instance.index, error = %error, "cannot move instance into its cgroup");
        }
        let oom_before = cgroups.oom_kills();
        tracing::info!(app = %instance.app, instance = instance.index, pid, port = instance.port, "instance started");
        let origin = Origin {
            app: instance.app.clone(),
            instance: instance.index,
            pid,
        };
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(output::capture(
                stdout,
                "stdout",
                origin.clone(),
                context.sink.clone(),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(output::capture(
                stderr,
                "stderr",
                origin,
                context.sink.clone(),
            ));
        }
        let ready = tokio::spawn(probe_until_ready(instance.clone(), context.clone()));

        let status = tokio::select! {
            status = child.wait() => status,
            _ = until_stop(&mut stop) => {
                ready.abort();
                instance.set_state(State::Stopping);
                instance.stop_traffic();
                spawn::signal_group(pid, spawn::signal_number(&config.stop_signal));
                match tokio::time::timeout(config.stop_timeout, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        tracing::warn!(app = %instance.app, instance = instance.index, pid, timeout = ?config.stop_timeout, "instance ignored the stop signal; killing it");
                        spawn::signal_group(pid, libc::SIGKILL);
                        child.wait().await
                    }
                }
            }
        };
        ready.abort();
        instance.stop_traffic();
        instance.pid.store(0, Ordering::Relaxed);
        let stopping = *stop.borrow();
        let success = status.as_ref().is_ok_and(|s| s.success());
        let reason = match &status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit code {code}{}", spawn::exit_hint(code)),
                (None, Some(signal)) => format!("killed by {}", spawn::signal_name(signal)),
                _ => "unknown".to_string(),
            },
            Err(e) => format!("wait failed: {e}"),
        };
        if cgroups.oom_kills() > oom_before {
            tracing::error!(app = %instance.app, instance = instance.index, pid, reason = %reason, memory_limit = ?config.memory_limit, oom_kill = true, "instance killed by the memory limit");
        } else if stopping {
            tracing::info!(app = %instance.app, instance = instance.index, pid, reason = %reason, "instance stopped");
        } else {
            tracing::warn!(app = %instance.app, instance = instance.index, pid, reason = %reason, uptime = ?started.elapsed(), "instance exited");
        }
        if stopping {
            break;
        }
        let restart = match config.restart {
            Restart::Always => true,
            Restart::OnFailure => !success,
            Restart::Never => false,
        };
        if !restart {
            instance.set_state(State::Exited);
            cgroups.remove();
            instance.stopped.send_replace(true);
            return;
        }
        if !wait_backoff(&instance, &mut stop, &mut delay, config, started).await {
            break;
        }
    }
    instance.set_state(State::Stopped);
    cgroups.remove();
    instance.stopped.send_replace(true);
}

/// Sleeps the backoff before a restart (resetting it when the instance had
/// run long enough). False if a stop came in meanwhile.
async fn wait_backoff(
    instance: &Instance,
    stop: &mut watch::Receiver<bool>,
    delay: &mut Duration,
    config: &App,
    started: Instant,
) -> bool {
    if started.elapsed() >= STABLE_AFTER {
        *delay = config.backoff;
    }
    instance.set_state(State::Backoff);
    instance.restarts.fetch_add(1, Ordering::Relaxed);
    tracing::info!(app = %instance.app, instance = instance.index, backoff = ?*delay, "restarting after backoff");
    let wait = *delay;
    *delay = (*delay * 2).min(config.max_backoff);
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = until_stop(stop) => false,
    }
}

/// Completes once a stop has been requested.
async fn until_stop(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across other awaits.
    let _ = stop.wait_for(|stopping| *stopping).await.map(|_| ());
}
