//! Per-server state that outlives config reloads: in-flight requests,
//! active health, passive ejection, circuit breaker, draining.
//!
//! Stored in `Registry` keyed by (upstream, address) so a server that stays
//! in the config keeps its state across reloads. Every state change is
//! logged as a structured event and counted here, in one place that the
//! metrics and status page read.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How often idle upstream connections are checked for a timeout or a
/// close by their server.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Active health as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Added by a reload and not checked yet: gets no traffic.
    Unknown,
    Up,
    Down,
}

/// One upstream server's live state.
#[derive(Debug)]
pub struct ServerState {
    pub upstream: String,
    pub addr: SocketAddr,
    in_flight: AtomicUsize,
    health: AtomicU8,
    pub(crate) draining: AtomicBool,
    /// Milliseconds on `clock::now_ms` until which the server is ejected.
    pub(crate) ejected_until: AtomicU64,
    pub(crate) passive: Mutex<super::passive::Window>,
    pub(crate) breaker: Mutex<super::breaker::Breaker>,
    pub(crate) counters: Counters,
    /// Idle keep-alive connections to this server, bare sockets shared
    /// by the HTTP/1.1 fast path and the general path (`proxy::pool`).
    pub idle: crate::h1::upstream::Idle,
    /// Recently used client connections of the general path, kept ready
    /// for a while before their sockets go back to `idle`.
    pub hot: crate::proxy::pool::Hot,
}

/// Totals since wharf started, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub ejections: AtomicU64,
    pub breaker_opens: AtomicU64,
    pub health_changes: AtomicU64,
}

impl ServerState {
    pub fn new(upstream: &str, addr: SocketAddr, health: Health) -> ServerState {
        ServerState {
            upstream: upstream.to_string(),
            addr,
            in_flight: AtomicUsize::new(0),
            health: AtomicU8::new(health as u8),
            draining: AtomicBool::new(false),
            ejected_until: AtomicU64::new(0),
            passive: Mutex::new(super::passive::Window::default()),
            breaker: Mutex::new(super::breaker::Breaker::default()),
            counters: Counters::default(),
            idle: crate::h1::upstream::Idle::default(),
            hot: crate::proxy::pool::Hot::default(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request as in flight until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Acquire) {
            x if x == Health::Up as u8 => Health::Up,
            x if x == Health::Down as u8 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// Sets the active health; logs and counts a change.
    pub fn set_health(&self, health: Health, reason: &str) {
        let old = self.health.swap(health as u8, Ordering::AcqRel);
        if old != health as u8 {
            self.counters.health_changes.fetch_add(1, Ordering::Relaxed);
            if health == Health::Up {
                // A passing active check is better evidence than the
                // failures that ejected it: let it back in now.
                self.ejected_until.store(0, Ordering::Release);
            }
            match health {
                Health::Up => {
                    tracing::info!(upstream = %self.upstream, server = %self.addr, state = "up", reason, "upstream server state changed")
                }
                _ => {
                    tracing::warn!(upstream = %self.upstream, server = %self.addr, state = ?health, reason, "upstream server state changed")
                }
            }
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Stops new requests to this server (in-flight ones finish).
    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Release);
    }

    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until.load(Ordering::Acquire) > now_ms
    }

    /// `is_ejected`, reading the clock only for a server ejected at some
    /// time (a server never ejected has `ejected_until` 0).
    pub fn is_ejected_at(&self, now: &super::clock::Lazy) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        until != 0 && until > now.get()
    }
}

/// Decrements the in-flight count when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<ServerState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Server states by (upstream, address), kept across reloads.
#[derive(Debug, Default)]
pub struct Registry {
    states: Mutex<std::collections::HashMap<(String, SocketAddr), Arc<ServerState>>>,
}

impl Registry {
    /// The state for a server: the existing one if it survived the reload,
    /// else a new one starting at `initial`.
    pub fn get(&self, upstream: &str, addr: SocketAddr, initial: Health) -> Arc<ServerState> {
        let mut states = match self.states.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        states
            .entry((upstream.to_string(), addr))
            .or_insert_with(|| Arc::new(ServerState::new(upstream, addr, initial)))
            .clone()
    }

    /// Requests in flight to `addr`, over every upstream it belongs to.
    pub fn in_flight(&self, addr: SocketAddr) -> usize {
        let states = match self.states.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        states
            .iter()
            .filter(|((_, a), _)| *a == addr)
            .map(|(_, state)| state.in_flight())
            .sum()
    }

    /// Forgets past failures of `addr` (a fresh process now listens there).
    pub fn forgive(&self, addr: SocketAddr) {
        let states = match self.states.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for ((_, a), state) in states.iter() {
            if *a == addr {
                state.ejected_until.store(0, Ordering::Release);
                if let Ok(mut breaker) = state.breaker.lock() {
                    *breaker = super::breaker::Breaker::default();
                }
            }
        }
    }

    /// Closes idle upstream connections that timed out or that their
    /// server closed, every `SWEEP_EVERY`, for as long as the registry
    /// lives.
    pub fn spawn_sweeper(registry: &Arc<Registry>) {
        let registry = Arc::downgrade(registry);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                let states: Vec<Arc<ServerState>> = {
                    let states = match registry.states.lock() {
                        Ok(guard) => guard,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    states.values().cloned().collect()
                };
                let now = std::time::Instant::now();
                for state in states {
                    let closed = state.idle.sweep(now);
                    if closed > 0 {
                        tracing::debug!(upstream = %state.upstream, server = %state.addr, closed, "closed idle upstream connections");
                    }
                }
            }
        });
    }

    /// Forgets servers no longer in the config.
    pub fn retain(&self, keep: impl Fn(&str, SocketAddr) -> bool) {
        let mut states = match self.states.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        states.retain(|(upstream, addr), _| keep(upstream, *addr));
    }
}
