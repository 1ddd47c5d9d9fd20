//! Choosing a server for a request: which members may take one now, the
//! algorithm's choice among them, backups last, and how long a client
//! should wait when none is left.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::state::Health;
use super::{clock, lock, Pool};

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

impl Pool {
    /// Whether `members[index]` may get a new request now: what `pick`
    /// asks of every candidate, and what the status and metrics report.
    pub fn available(&self, index: usize, now: &clock::Lazy) -> bool {
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
        if state.is_draining() || state.health() != Health::Up || state.is_ejected_at(now) {
            return false;
        }
        if self.settings.breaker.is_some() {
            return lock(&state.breaker).allows(now.get());
        }
        true
    }

    /// Chooses a server for a request from `client`, avoiding `tried` when
    /// another server is available. Backups are used only when no primary is.
    pub fn pick(&self, client: IpAddr, tried: &Tried) -> Pick {
        let now = clock::Lazy::default();
        for backup in [false, true] {
            for avoid_tried in [true, false] {
                let eligible = |i: usize| {
                    self.members.get(i).is_some_and(|m| m.backup == backup)
                        && !(avoid_tried && tried.contains(i))
                        && self.available(i, &now)
                };
                // A half-open breaker admits one trial; if another request
                // took it between the check and here, pick again.
                for _ in 0..self.members.len().max(1) {
                    let Some(index) = self.selector.pick(&self.members, &eligible, client) else {
                        break;
                    };
                    if self.settings.breaker.is_none()
                        || lock(&self.members[index].state.breaker).acquire(now.get())
                    {
                        return Pick::Server(index);
                    }
                }
            }
        }
        let now = now.get();
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
}
