//! What an attempt's outcome changes: whether to retry it elsewhere (limit,
//! budget, backoff), and how a success or failure feeds the breaker and
//! passive ejection, with their state changes logged.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::breaker::Transition;
use super::{clock, lock, retry, Pool};

impl Pool {
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
        if success && self.settings.breaker.is_none() {
            // Nothing to feed: a success only moves a breaker.
            return;
        }
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
