//! Retry pacing: exponential backoff with jitter, and a budget that keeps
//! retries to a fraction of the request rate so a failing pool is not
//! hammered by its own retries.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// One retry, in budget units.
const UNIT: i64 = 1000;
/// Retries allowed before any request has paid for them (and the most that
/// can be saved up): a quiet pool can still retry a few times.
const RESERVE: i64 = 10 * UNIT;

/// Retries may add at most `ratio` to the request rate (plus a small
/// reserve). Every request deposits `ratio`; every retry withdraws one.
#[derive(Debug)]
pub struct Budget {
    balance: AtomicI64,
    per_request: i64,
}

impl Budget {
    pub fn new(ratio: f64) -> Budget {
        Budget {
            balance: AtomicI64::new(RESERVE),
            per_request: (ratio.clamp(0.0, 1.0) * UNIT as f64) as i64,
        }
    }

    pub fn deposit(&self) {
        let after = self.balance.fetch_add(self.per_request, Ordering::Relaxed) + self.per_request;
        if after > RESERVE {
            self.balance.fetch_min(RESERVE, Ordering::Relaxed);
        }
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= UNIT).then_some(b - UNIT)
            })
            .is_ok()
    }
}

/// Delay before retry number `attempt` (1-based): base·2^(attempt-1),
/// capped at `max`, then a random point in its upper half ("equal jitter")
/// so retries from many clients do not line up.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exponential.min(max);
    let half = capped / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        for _ in 0..100 {
            let first = backoff(1, base, max);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(3, base, max);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let tenth = backoff(10, base, max);
            assert!(tenth >= Duration::from_millis(500) && tenth <= max);
        }
    }

    #[test]
    fn budget_limits_retries_to_a_share_of_requests() {
        let budget = Budget::new(0.2);
        // Spend the reserve.
        while budget.withdraw() {}
        let mut retries = 0;
        for _ in 0..1000 {
            budget.deposit();
            if budget.withdraw() {
                retries += 1;
            }
        }
        assert_eq!(retries, 200);
    }
}
