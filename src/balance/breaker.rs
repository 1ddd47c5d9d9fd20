//! The circuit breaker: after `failures` consecutive failures a server is
//! cut off for `open_for`; then exactly one trial request (half-open)
//! decides whether it closes again or reopens.
//!
//! Pure state machine over caller-supplied times (milliseconds on
//! `clock::now_ms`), so it is tested with tokio's paused clock.

use crate::config;

/// Breaker state of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Breaker {
    /// Normal; counts consecutive failures.
    #[default]
    Closed,
    Counting(u32),
    /// No traffic until `until_ms`.
    Open {
        until_ms: u64,
    },
    /// One trial request is (or may be) in flight.
    HalfOpen {
        trial_taken: bool,
    },
}

/// What a recorded outcome changed, for logging and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    /// Whether a request may be sent now (without taking the trial).
    pub fn allows(&self, now_ms: u64) -> bool {
        match *self {
            Breaker::Closed | Breaker::Counting(_) => true,
            Breaker::Open { until_ms } => now_ms >= until_ms,
            Breaker::HalfOpen { trial_taken } => !trial_taken,
        }
    }

    /// Claims the right to send one request; in half-open, only one caller
    /// gets it.
    pub fn acquire(&mut self, now_ms: u64) -> bool {
        match *self {
            Breaker::Closed | Breaker::Counting(_) => true,
            Breaker::Open { until_ms } if now_ms >= until_ms => {
                *self = Breaker::HalfOpen { trial_taken: true };
                true
            }
            Breaker::Open { .. } => false,
            Breaker::HalfOpen { trial_taken: false } => {
                *self = Breaker::HalfOpen { trial_taken: true };
                true
            }
            Breaker::HalfOpen { trial_taken: true } => false,
        }
    }

    /// Records the outcome of a request sent to this server.
    pub fn record(&mut self, success: bool, now_ms: u64, settings: &config::Breaker) -> Transition {
        let open = Breaker::Open {
            until_ms: now_ms
                .saturating_add(u64::try_from(settings.open_for.as_millis()).unwrap_or(u64::MAX)),
        };
        match (*self, success) {
            (Breaker::HalfOpen { .. }, true) => {
                *self = Breaker::Closed;
                Transition::Closed
            }
            (Breaker::HalfOpen { .. }, false) => {
                *self = open;
                Transition::Opened
            }
            (Breaker::Closed | Breaker::Counting(_), true) => {
                *self = Breaker::Closed;
                Transition::None
            }
            (Breaker::Closed, false) | (Breaker::Counting(_), false) => {
                let failures = match *self {
                    Breaker::Counting(n) => n + 1,
                    _ => 1,
                };
                if failures >= settings.failures {
                    *self = open;
                    Transition::Opened
                } else {
                    *self = Breaker::Counting(failures);
                    Transition::None
                }
            }
            // Late answers from before the breaker opened change nothing.
            (Breaker::Open { .. }, _) => Transition::None,
        }
    }

    /// Milliseconds until it may let a request through again, if open.
    pub fn open_for_ms(&self, now_ms: u64) -> Option<u64> {
        match *self {
            Breaker::Open { until_ms } if until_ms > now_ms => Some(until_ms - now_ms),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Breaker::Open { .. } | Breaker::HalfOpen { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> config::Breaker {
        config::Breaker {
            failures: 3,
            open_for: Duration::from_secs(10),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let s = settings();
        let mut b = Breaker::default();
        assert_eq!(b.record(false, 0, &s), Transition::None);
        assert_eq!(b.record(false, 0, &s), Transition::None);
        assert_eq!(
            b.record(true, 0, &s),
            Transition::None,
            "a success resets the count"
        );
        assert_eq!(b.record(false, 0, &s), Transition::None);
        assert_eq!(b.record(false, 0, &s), Transition::None);
        assert_eq!(b.record(false, 100, &s), Transition::Opened);
        assert!(!b.allows(5_000));
        assert!(!b.clone().acquire(10_099));
    }

    #[test]
    fn half_open_lets_one_trial_through_which_decides() {
        let s = settings();
        let mut b = Breaker::Open { until_ms: 10_000 };
        assert!(
            b.acquire(10_000),
            "first request after open_for is the trial"
        );
        assert!(!b.allows(10_001), "only one trial at a time");
        assert!(!b.acquire(10_001));
        assert_eq!(b.record(false, 10_050, &s), Transition::Opened);
        assert_eq!(b, Breaker::Open { until_ms: 20_050 });
        assert!(b.acquire(20_050));
        assert_eq!(b.record(true, 20_060, &s), Transition::Closed);
        assert!(b.allows(20_061));
    }
}
