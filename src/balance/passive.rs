//! Passive outlier ejection: failures seen in real traffic (connection
//! errors, timeouts, 5xx answers) within a sliding window take a server out
//! for `eject_for`, like nginx's `max_fails` / `fail_timeout`.

use std::collections::VecDeque;

use crate::config;

/// Recent failure times (ms on `clock::now_ms`) of one server.
#[derive(Debug, Default)]
pub struct Window {
    failures: VecDeque<u64>,
}

impl Window {
    /// Records a failure; true when the server should now be ejected.
    pub fn record_failure(&mut self, now_ms: u64, settings: &config::Passive) -> bool {
        let window = u64::try_from(settings.window.as_millis()).unwrap_or(u64::MAX);
        while self
            .failures
            .front()
            .is_some_and(|&t| now_ms.saturating_sub(t) >= window)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now_ms);
        if self.failures.len() >= settings.max_fails as usize {
            self.failures.clear();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ejects_only_when_failures_fall_within_the_window() {
        let s = config::Passive {
            max_fails: 3,
            window: Duration::from_secs(10),
            eject_for: Duration::from_secs(30),
            max_ejected_percent: 100,
        };
        let mut w = Window::default();
        assert!(!w.record_failure(0, &s));
        assert!(!w.record_failure(5_000, &s));
        // The first failure has left the window.
        assert!(!w.record_failure(11_000, &s));
        assert!(w.record_failure(12_000, &s));
    }
}
