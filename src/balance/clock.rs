//! A millisecond clock for server state, on tokio's clock so tests can
//! pause and advance time.

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
