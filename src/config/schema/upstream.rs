//! `[upstream.NAME]`: a pool's servers, how one is chosen, timeouts and
//! retries, and the health check, passive ejection and breaker settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

/// `[upstream.NAME]`: a pool of backend servers.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// `app = "NAME"`: the pool is that app's live instances (then `servers` is empty).
    pub app: Option<String>,
    pub balance: Balance,
    pub servers: Vec<UpstreamServer>,
    #[serde(with = "super::humantime_serde_compat")]
    pub connect_timeout: Duration,
    #[serde(with = "super::humantime_serde_compat")]
    pub response_timeout: Duration,
    /// Extra attempts on another server (0 = none).
    pub retries: u32,
    /// First retry delay; doubles each retry, with jitter, up to `retry_backoff_max`.
    #[serde(with = "super::humantime_serde_compat")]
    pub retry_backoff: Duration,
    #[serde(with = "super::humantime_serde_compat")]
    pub retry_backoff_max: Duration,
    /// Retries may add at most this fraction to the request rate.
    pub retry_budget: f64,
    /// Active health checks; `None` when `[upstream.NAME.health]` is absent.
    pub health: Option<HealthCheck>,
    /// Passive outlier ejection; `None` when disabled (`max_fails = 0`).
    pub passive: Option<Passive>,
    /// Circuit breaker; `None` when `[upstream.NAME.breaker]` is absent.
    pub breaker: Option<Breaker>,
}

/// `balance = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    RoundRobin,
    LeastConn,
    IpHash,
    P2c,
    Random,
}

/// One backend server. A struct, not a bare address, because weights,
/// backup flags and health state attach here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamServer {
    pub addr: SocketAddr,
    /// Relative share of traffic, 1..=1000.
    pub weight: u32,
    /// Used only when no primary server is available.
    pub backup: bool,
}

/// `[upstream.NAME.health]`: active checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheck {
    /// Path requested, starting with `/`.
    pub path: String,
    #[serde(with = "super::humantime_serde_compat")]
    pub interval: Duration,
    #[serde(with = "super::humantime_serde_compat")]
    pub timeout: Duration,
    /// Consecutive failures before a server is taken out.
    pub fails: u32,
    /// Consecutive successes before it is let back in.
    pub passes: u32,
    /// Accepted statuses, inclusive range: "2xx" = 200..=299, "200" = 200..=200, "200-399".
    pub expect: StatusRange,
}

/// An inclusive range of HTTP statuses, written "2xx", "204" or "200-399".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub low: u16,
    pub high: u16,
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        (self.low..=self.high).contains(&status)
    }
}

/// As the file writes it: "2xx", "204" or "200-399".
impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low.is_multiple_of(100) && self.high == self.low + 99 {
            write!(f, "{}xx", self.low / 100)
        } else if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl Serialize for StatusRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `[upstream.NAME.passive]`: outlier ejection from real traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passive {
    /// Connection errors, timeouts and 5xx answers within `window` that eject a server.
    pub max_fails: u32,
    #[serde(with = "super::humantime_serde_compat")]
    pub window: Duration,
    #[serde(with = "super::humantime_serde_compat")]
    pub eject_for: Duration,
    /// Never eject more than this share of the pool's servers at once (0..=100).
    pub max_ejected_percent: u32,
}

/// `[upstream.NAME.breaker]`: circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breaker {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before one trial request decides.
    #[serde(with = "super::humantime_serde_compat")]
    pub open_for: Duration,
}
