//! Upstream pools: the servers behind an `[upstream.NAME]` and the choice of
//! which one takes the next request.
//!
//! A pool is built per config load from `config::Upstream`; it owns the
//! pooled HTTP client used to reach its servers and the selection
//! algorithm. Live server state (in-flight, health, ejection, breaker)
//! lives in `state::ServerState`, shared across reloads through the
//! `Registry`. Selection algorithms are one file each; health checks,
//! passive ejection and the breaker are separate from selection.

pub mod breaker;
pub mod health;
pub mod ip_hash;
pub mod least_conn;
pub mod p2c;
pub mod passive;
pub mod random;
pub mod round_robin;
pub mod select;
pub mod state;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::config::Upstream;
use crate::observe::metrics::UpstreamMetrics;
use crate::proxy::client::UpstreamClient;
use state::ServerState;

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
pub mod clock;
pub mod retry;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use breaker::Transition;
use select::Select;
use state::{Health, Registry};

/// Servers already tried by one request (first 128 members).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tried(u128);

impl Tried {
    pub fn insert(&mut self, index: usize) {
        if index < 128 {
            self.0 |= 1 << index;
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        index < 128 && self.0 & (1 << index) != 0
    }
}

/// The result of asking a pool for a server.
#[derive(Debug)]
pub enum Pick {
    Server(usize),
    /// Nothing is available; try again after this long.
    Unavailable {
        retry_after: Duration,
    },
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

    /// Whether `members[index]` may get a new request now: what `pick`
    /// asks of every candidate, and what the status and metrics report.
    pub fn available(&self, index: usize, now_ms: u64) -> bool {
        let Some(member) = self.members.get(index) else {
            return false;
        };
        if member
            .serving
            .as_ref()
            .is_some_and(|s| !s.load(Ordering::Acquire))
        {
            return false;
        }
        let state = &member.state;
        if state.is_draining() || state.health() != Health::Up || state.is_ejected(now_ms) {
            return false;
        }
        if self.settings.breaker.is_some() {
            return lock(&state.breaker).allows(now_ms);
        }
        true
    }

    /// Chooses a server for a request from `client`, avoiding `tried` when
    /// another server is available. Backups are used only when no primary is.
    pub fn pick(&self, client: IpAddr, tried: &Tried) -> Pick {
        let now = clock::now_ms();
        for backup in [false, true] {
            for avoid_tried in [true, false] {
                let eligible = |i: usize| {
                    self.members.get(i).is_some_and(|m| m.backup == backup)
                        && !(avoid_tried && tried.contains(i))
                        && self.available(i, now)
                };
                // A half-open breaker admits one trial; if another request
                // took it between the check and here, pick again.
                for _ in 0..self.members.len().max(1) {
                    let Some(index) = self.selector.pick(&self.members, &eligible, client) else {
                        break;
                    };
                    if self.settings.breaker.is_none()
                        || lock(&self.members[index].state.breaker).acquire(now)
                    {
                        return Pick::Server(index);
                    }
                }
            }
        }
        let retry_after = self.retry_after(now);
        let last = self.last_unavailable_log.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000 || last == 0 {
            self.last_unavailable_log
                .store(now.max(1), Ordering::Relaxed);
            tracing::error!(
                upstream = %self.name,
                servers = self.members.len(),
                retry_after = ?retry_after,
                "no upstream server is available; answering 503"
            );
        }
        Pick::Unavailable { retry_after }
    }

    /// How long until some server may be available again.
    fn retry_after(&self, now_ms: u64) -> Duration {
        let mut soonest: Option<u64> = None;
        for member in &self.members {
            let ejected = member.state.ejected_until.load(Ordering::Acquire);
            if ejected > now_ms {
                soonest = Some(soonest.map_or(ejected - now_ms, |s| s.min(ejected - now_ms)));
            }
            if let Some(ms) = lock(&member.state.breaker).open_for_ms(now_ms) {
                soonest = Some(soonest.map_or(ms, |s| s.min(ms)));
            }
        }
        let fallback = self
            .settings
            .health
            .as_ref()
            .map_or(1000, |h| h.interval.as_millis() as u64);
        Duration::from_millis(soonest.unwrap_or(fallback).max(1000))
    }

    /// After a failed attempt on server `index`: whether to try another
    /// server, and after what pause. `wanted` says the failure is worth a
    /// retry and resending is safe; the retry limit and the retry budget
    /// decide the rest. Counts and logs the retry and advances `attempt`
    /// (retries made so far).
    pub fn retry(&self, index: usize, attempt: &mut u32, wanted: bool) -> Option<Duration> {
        if !wanted || *attempt >= self.settings.retries || !self.budget.withdraw() {
            return None;
        }
        *attempt += 1;
        self.metrics.retried();
        if let Some(member) = self.members.get(index) {
            tracing::info!(
                upstream = %self.name,
                server = %member.addr,
                attempt = *attempt,
                "attempt failed on this server; retrying"
            );
        }
        Some(retry::backoff(
            *attempt,
            self.settings.retry_backoff,
            self.settings.retry_backoff_max,
        ))
    }

    /// Records how a request to `members[index]` went: feeds passive
    /// ejection and the breaker, and logs their state changes.
    pub fn record(&self, index: usize, success: bool) {
        let Some(member) = self.members.get(index) else {
            return;
        };
        let state = &member.state;
        let now = clock::now_ms();
        if !success {
            state.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(settings) = &self.settings.breaker {
            let transition = lock(&state.breaker).record(success, now, settings);
            match transition {
                Transition::Opened => {
                    state.counters.breaker_opens.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(upstream = %self.name, server = %member.addr, state = "breaker_open", open_for = ?settings.open_for, "upstream server state changed");
                }
                Transition::Closed => {
                    tracing::info!(upstream = %self.name, server = %member.addr, state = "breaker_closed", "upstream server state changed");
                }
                Transition::None => {}
            }
        }
        if let (false, Some(settings)) = (success, &self.settings.passive) {
            let eject = lock(&state.passive).record_failure(now, settings);
            if eject {
                let ejected = self
                    .members
                    .iter()
                    .filter(|m| m.state.is_ejected(now))
                    .count();
                // Rounded down: a pool of one server is never emptied by
                // its own traffic (as nginx never counts a lone server
                // unavailable), unless `max_ejected_percent = 100`.
                let allowed = self.members.len() * settings.max_ejected_percent as usize / 100;
                if ejected < allowed {
                    let until = now.saturating_add(settings.eject_for.as_millis() as u64);
                    state.ejected_until.store(until, Ordering::Release);
                    state.counters.ejections.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(upstream = %self.name, server = %member.addr, state = "ejected", eject_for = ?settings.eject_for, max_fails = settings.max_fails, "upstream server state changed");
                } else if allowed == 0 && self.members.len() == 1 {
                    tracing::warn!(upstream = %self.name, server = %member.addr, max_fails = settings.max_fails, window = ?settings.window, "the pool's only server is failing; it is kept in, as max_ejected_percent is under 100");
                } else {
                    tracing::warn!(upstream = %self.name, server = %member.addr, ejected, "not ejecting: max_ejected_percent reached");
                }
            }
        }
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
mod tests {
    use super::*;
    use crate::config::{Balance, Breaker, Passive, UpstreamServer};

    fn upstream(
        servers: &[(&str, bool)],
        breaker: Option<Breaker>,
        passive: Option<Passive>,
    ) -> Upstream {
        Upstream {
            app: None,
            balance: Balance::RoundRobin,
            servers: servers
                .iter()
                .map(|(addr, backup)| UpstreamServer {
                    addr: addr.parse().expect("addr"),
                    weight: 1,
                    backup: *backup,
                })
                .collect(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            retries: 1,
            retry_backoff: Duration::from_millis(10),
            retry_backoff_max: Duration::from_millis(100),
            retry_budget: 0.2,
            health: None,
            passive,
            breaker,
        }
    }

    fn pool(upstream: &Upstream) -> Pool {
        let client = crate::proxy::client::build(Duration::from_secs(1));
        Pool::new("app", upstream, client, &Registry::default(), false, None)
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_failures_and_half_opens_after_open_for() {
        let settings = Breaker {
            failures: 3,
            open_for: Duration::from_secs(10),
        };
        let pool = pool(&upstream(&[("127.0.0.1:1", false)], Some(settings), None));
        for _ in 0..3 {
            assert!(matches!(
                pool.pick(CLIENT, &Tried::default()),
                Pick::Server(0)
            ));
            pool.record(0, false);
        }
        match pool.pick(CLIENT, &Tried::default()) {
            Pick::Unavailable { retry_after } => assert_eq!(retry_after, Duration::from_secs(10)),
            other => panic!("breaker should be open, got {other:?}"),
        }
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Unavailable { .. }
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        // Half-open: exactly one trial.
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(0)
        ));
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Unavailable { .. }
        ));
        pool.record(0, true);
        for _ in 0..5 {
            assert!(matches!(
                pool.pick(CLIENT, &Tried::default()),
                Pick::Server(0)
            ));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn passive_ejection_expires_and_respects_max_ejected_percent() {
        let passive = Passive {
            max_fails: 2,
            window: Duration::from_secs(10),
            eject_for: Duration::from_secs(30),
            max_ejected_percent: 50,
        };
        let pool = pool(&upstream(
            &[("127.0.0.1:1", false), ("127.0.0.1:2", false)],
            None,
            Some(passive),
        ));
        pool.record(0, false);
        pool.record(0, false);
        for _ in 0..4 {
            assert!(matches!(
                pool.pick(CLIENT, &Tried::default()),
                Pick::Server(1)
            ));
        }
        // Ejecting the second too would exceed 50% of the pool.
        pool.record(1, false);
        pool.record(1, false);
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(1)
        ));
        tokio::time::advance(Duration::from_secs(30)).await;
        let mut seen = [false; 2];
        for _ in 0..4 {
            if let Pick::Server(i) = pool.pick(CLIENT, &Tried::default()) {
                seen[i] = true;
            }
        }
        assert_eq!(
            seen,
            [true, true],
            "the ejected server is back after eject_for"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_server_is_not_ejected_unless_max_ejected_percent_is_100() {
        for (percent, ejected) in [(50, false), (99, false), (100, true)] {
            let passive = Passive {
                max_fails: 2,
                window: Duration::from_secs(10),
                eject_for: Duration::from_secs(30),
                max_ejected_percent: percent,
            };
            let pool = pool(&upstream(&[("127.0.0.1:1", false)], None, Some(passive)));
            for _ in 0..10 {
                pool.record(0, false);
            }
            let pick = pool.pick(CLIENT, &Tried::default());
            assert_eq!(
                matches!(pick, Pick::Unavailable { .. }),
                ejected,
                "max_ejected_percent = {percent}"
            );
        }
        // Three servers at 50%: one may go, not two.
        let passive = Passive {
            max_fails: 1,
            window: Duration::from_secs(10),
            eject_for: Duration::from_secs(30),
            max_ejected_percent: 50,
        };
        let pool = pool(&upstream(
            &[
                ("127.0.0.1:1", false),
                ("127.0.0.1:2", false),
                ("127.0.0.1:3", false),
            ],
            None,
            Some(passive),
        ));
        pool.record(0, false);
        pool.record(1, false);
        let mut seen = [false; 3];
        for _ in 0..30 {
            if let Pick::Server(i) = pool.pick(CLIENT, &Tried::default()) {
                seen[i] = true;
            }
        }
        assert_eq!(seen, [false, true, true]);
    }

    #[tokio::test]
    async fn backups_only_when_no_primary_and_retries_avoid_tried_servers() {
        let pool = pool(&upstream(
            &[
                ("127.0.0.1:1", false),
                ("127.0.0.1:2", false),
                ("127.0.0.1:3", true),
            ],
            None,
            None,
        ));
        for _ in 0..10 {
            assert!(matches!(
                pool.pick(CLIENT, &Tried::default()),
                Pick::Server(0 | 1)
            ));
        }
        let mut tried = Tried::default();
        tried.insert(0);
        for _ in 0..4 {
            assert!(matches!(pool.pick(CLIENT, &tried), Pick::Server(1)));
        }
        pool.members[0].state.set_health(Health::Down, "test");
        pool.members[1].state.set_draining(true);
        for _ in 0..4 {
            assert!(matches!(
                pool.pick(CLIENT, &Tried::default()),
                Pick::Server(2)
            ));
        }
    }
}
