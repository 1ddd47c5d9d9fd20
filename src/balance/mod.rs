//! Upstream pools: the servers behind an `[upstream.NAME]` and the choice of
//! which one takes the next request.
//!
//! A pool is built per config load from `config::Upstream`; it owns the
//! pooled HTTP client used to reach its servers and the selection
//! algorithm. Live server state (in-flight, health, ejection, breaker)
//! lives in `state::ServerState`, shared across reloads through the
//! `Registry`. Selection algorithms are one file each; health checks,
//! passive ejection and the breaker are separate from selection.
//! Choosing a server for a request is in `picking.rs`; what an attempt's
//! outcome changes (retries, ejection, the breaker) is in `recording.rs`.

pub mod breaker;
pub mod clock;
pub mod health;
pub mod ip_hash;
pub mod least_conn;
pub mod p2c;
pub mod passive;
mod picking;
pub mod random;
mod recording;
pub mod retry;
pub mod round_robin;
pub mod select;
pub mod state;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Upstream;
use crate::observe::metrics::UpstreamMetrics;
use crate::proxy::client::UpstreamClient;
use select::Select;
use state::{Health, Registry, ServerState};

pub use picking::{Pick, Tried};

/// One server of a pool, as configured now.
#[derive(Debug, Clone)]
pub struct Member {
    pub state: Arc<ServerState>,
    pub addr: SocketAddr,
    /// `addr` pre-parsed for URIs, so requests neither format nor parse it
    /// (cloning it shares its bytes).
    pub authority: http::uri::Authority,
    pub weight: u32,
    pub backup: bool,
    /// For app instances: false while the process is down, starting or
    /// draining (set by the supervisor).
    pub serving: Option<Arc<AtomicBool>>,
}

/// A named pool of servers.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub members: Vec<Member>,
    pub settings: Upstream,
    pub client: UpstreamClient,
    pub budget: retry::Budget,
    /// Upstream response times and retries (observe/metrics.rs).
    pub metrics: UpstreamMetrics,
    selector: Box<dyn Select>,
    stop_checks: watch::Sender<bool>,
    last_unavailable_log: AtomicU64,
}

impl Pool {
    /// Builds a pool. Server state comes from `registry` (kept across
    /// reloads); a server new to the registry starts `Unknown` when this is
    /// a reload of a pool with active checks, `Up` otherwise.
    pub fn new(
        name: &str,
        upstream: &Upstream,
        client: UpstreamClient,
        registry: &Registry,
        reload: bool,
        instances: Option<Vec<(SocketAddr, Arc<AtomicBool>)>>,
    ) -> Pool {
        let initial = if reload && upstream.health.is_some() {
            Health::Unknown
        } else {
            Health::Up
        };
        let member =
            |addr: SocketAddr, weight: u32, backup: bool, serving: Option<Arc<AtomicBool>>| {
                let state = registry.get(name, addr, initial);
                if upstream.health.is_none() && state.health() != Health::Up {
                    state.set_health(Health::Up, "active health checks are off");
                }
                Member {
                    state,
                    addr,
                    authority: authority(addr),
                    weight: weight.max(1),
                    backup,
                    serving,
                }
            };
        let members: Vec<Member> = match instances {
            Some(instances) => instances
                .into_iter()
                .map(|(addr, serving)| member(addr, 1, false, Some(serving)))
                .collect(),
            None => upstream
                .servers
                .iter()
                .map(|server| member(server.addr, server.weight, server.backup, None))
                .collect(),
        };
        Pool {
            name: name.to_string(),
            selector: select::build(upstream.balance, &members),
            metrics: UpstreamMetrics::new(name, members.iter().map(|m| m.addr)),
            members,
            budget: retry::Budget::new(upstream.retry_budget),
            settings: upstream.clone(),
            client,
            stop_checks: watch::channel(false).0,
            last_unavailable_log: AtomicU64::new(0),
        }
    }

    /// Starts active health checks, if configured. Called once the pool is
    /// in the serving snapshot.
    pub fn start_health_checks(&self) {
        if let Some(settings) = &self.settings.health {
            for member in &self.members {
                health::spawn(
                    member.state.clone(),
                    settings.clone(),
                    self.client.clone(),
                    self.stop_checks.subscribe(),
                );
            }
        }
    }

    /// Stops this pool's background work (its replacement has started its own).
    pub fn retire(&self) {
        self.stop_checks.send_replace(true);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.retire();
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `addr` as a URI authority.
pub fn authority(addr: SocketAddr) -> http::uri::Authority {
    // A socket address always renders as a valid authority.
    http::uri::Authority::try_from(addr.to_string().as_str())
        .unwrap_or_else(|_| http::uri::Authority::from_static("127.0.0.1"))
}

#[cfg(test)]
mod tests;
