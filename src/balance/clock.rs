//! A millisecond clock for server state, on tokio's clock so tests can
//! pause and advance time.

use std::cell::Cell;
use std::sync::OnceLock;

use tokio::time::Instant;

/// Milliseconds since a point shortly before the first call. The base is
/// set an hour back so that a runtime with paused time (tests), whose clock
/// froze before the first call elsewhere, still reads forward-moving time.
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(std::time::Duration::from_secs(3600))
            .unwrap_or(now)
    });
    u64::try_from(Instant::now().saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}

/// `now_ms`, read on first use only: most requests to a healthy pool with
/// no breaker never need the time, and a clock read is a measurable share
/// of a proxied request's own work.
#[derive(Debug, Default)]
pub struct Lazy(Cell<Option<u64>>);

impl Lazy {
    /// A clock already read at `now_ms`.
    pub fn at(now_ms: u64) -> Lazy {
        Lazy(Cell::new(Some(now_ms)))
    }

    pub fn get(&self) -> u64 {
        match self.0.get() {
            Some(now) => now,
            None => {
                let now = now_ms();
                self.0.set(Some(now));
                now
            }
        }
    }
}
