//! A millisecond clock for server state, on tokio's clock so tests can
//! pause and advance time.

use std::sync::OnceLock;

use tokio::time::Instant;

/// Milliseconds since the first call in this process.
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(Instant::now().saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}
