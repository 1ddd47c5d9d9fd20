//! The typed configuration: what `wharf.toml` means once it has been read,
//! interpolated and checked.
//!
//! These types are plain data. They are built by `config::load` (which owns
//! parsing, `${...}` interpolation and file:line:column errors) and consumed
//! once per reload by `runtime::Snapshot::build`, which turns them into the
//! immutable routing tables the request path reads. Later features add
//! sections (`[tls]`, `[app.*]`) and keys here; every default lives in
//! `defaults` below and is written down in docs/config.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

/// Every default in one place; docs/config.md repeats these values.
pub mod defaults {
    use std::time::Duration;

    pub const LISTEN: &str = "0.0.0.0:${PORT:-8080}";
    pub const ADMIN: &str = "127.0.0.1:9180";
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
    pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_HEADER_SIZE: u64 = 64 * 1024;
    pub const MAX_BODY_SIZE: u64 = 10 * 1024 * 1024;
    pub const LOG_LEVEL: &str = "info";
    pub const REDIRECT_STATUS: u16 = 308;
    pub const RESPOND_STATUS: u16 = 200;
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const CORS_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
    pub const WEIGHT: u32 = 1;
    pub const RETRIES: u32 = 1;
    pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);
    pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);
    pub const RETRY_BUDGET: f64 = 0.2;
    pub const HEALTH_PATH: &str = "/health";
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
    pub const HEALTH_FAILS: u32 = 3;
    pub const HEALTH_PASSES: u32 = 2;
    pub const HEALTH_EXPECT: &str = "2xx";
    /// Passive ejection is on by default, like nginx's max_fails.
    pub const PASSIVE_MAX_FAILS: u32 = 5;
    pub const PASSIVE_WINDOW: Duration = Duration::from_secs(10);
    pub const PASSIVE_EJECT_FOR: Duration = Duration::from_secs(30);
    pub const PASSIVE_MAX_EJECTED_PERCENT: u32 = 50;
    pub const BREAKER_FAILURES: u32 = 5;
    pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(10);
    pub const ACME_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";
    pub const TLS_STORAGE: &str = "/var/lib/wharf";
    pub const APP_INSTANCES: u32 = 1;
    pub const APP_BACKOFF: Duration = Duration::from_secs(1);
    pub const APP_MAX_BACKOFF: Duration = Duration::from_secs(60);
    pub const APP_STOP_SIGNAL: &str = "TERM";
    pub const APP_STOP_TIMEOUT: Duration = Duration::from_secs(10);
    pub const APP_START_TIMEOUT: Duration = Duration::from_secs(60);
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where the configuration came from (a file path, or `<embedded demo>`).
    #[serde(skip)]
    pub source: String,
    /// Values that came from `${file:...}`; `wharf check --print` redacts them.
    #[serde(skip)]
    pub secrets: Vec<String>,
    pub server: Server,
    pub log: Log,
    #[serde(rename = "site")]
    pub sites: Vec<Site>,
    #[serde(rename = "upstream")]
    pub upstreams: BTreeMap<String, Upstream>,
    /// `[tls]`: how HTTPS listeners get certificates.
    pub tls: Tls,
    /// `[app.NAME]`: processes wharf supervises.
    #[serde(rename = "app")]
    pub apps: BTreeMap<String, App>,
}

/// `[server]`: listeners, limits and timeouts that apply to every request.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub listen: Vec<SocketAddr>,
    /// `None` when `admin = "off"`.
    #[serde(serialize_with = "super::render::serialize_admin")]
    pub admin: Option<SocketAddr>,
    pub trusted_proxies: Vec<IpNet>,
    #[serde(with = "humantime_serde_compat")]
    pub shutdown_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub header_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub idle_timeout: Duration,
    pub max_header_size: u64,
    pub max_body_size: u64,
    /// TLS listeners (HTTP/1.1 and HTTP/2 by ALPN).
    pub https: Vec<SocketAddr>,
    /// Bearer token the admin API requires; needed when `admin` is not loopback.
    pub admin_token: Option<String>,
}

/// `[log]`: wharf's own log and the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Log {
    pub format: LogFormat,
    pub access: AccessLog,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum AccessLog {
    Stdout,
    Stderr,
    Off,
    File(PathBuf),
}

/// `[[site]]`: a set of host names and the routes that serve them.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub hosts: Vec<HostPattern>,
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
    pub cors: Option<Cors>,
}

/// One entry of `hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum HostPattern {
    /// `"*"` or `hosts` omitted.
    Any,
    /// `"example.com"`, lowercased.
    Exact(String),
    /// `"*.example.com"`, stored as the suffix `".example.com"`, lowercased.
    Wildcard(String),
}

/// `[[site.route]]`: a path prefix and what to do with requests under it.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Path prefix, always starting with `/`.
    pub path: String,
    /// Flattened, so a route renders as it is written: `path`, `upstream`, ...
    #[serde(flatten)]
    pub action: Action,
}

/// What a route does. Exactly one of `upstream`, `static`, `redirect`,
/// `respond` is set in the file.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Action {
    Proxy {
        upstream: String,
    },
    Static {
        /// Absolute (relative paths are resolved against the config file's directory).
        #[serde(rename = "static")]
        root: PathBuf,
        spa: bool,
    },
    Redirect {
        #[serde(rename = "redirect")]
        to: String,
        status: u16,
    },
    Respond {
        status: u16,
        #[serde(rename = "respond")]
        body: String,
        content_type: String,
    },
}

/// `[site.cors]`.
#[derive(Debug, Clone, Serialize)]
pub struct Cors {
    /// Exact origins, or a single `"*"`.
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    /// Allowed request headers; `None` (not written) allows the ones a
    /// preflight asks for, as most CORS middleware does by default.
    pub headers: Option<Vec<String>>,
    pub expose_headers: Vec<String>,
    pub credentials: bool,
    #[serde(with = "humantime_serde_compat::option")]
    pub max_age: Option<Duration>,
}

/// `[upstream.NAME]`: a pool of backend servers.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// `app = "NAME"`: the pool is that app's live instances (then `servers` is empty).
    pub app: Option<String>,
    pub balance: Balance,
    pub servers: Vec<UpstreamServer>,
    #[serde(with = "humantime_serde_compat")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub response_timeout: Duration,
    /// Extra attempts on another server (0 = none).
    pub retries: u32,
    /// First retry delay; doubles each retry, with jitter, up to `retry_backoff_max`.
    #[serde(with = "humantime_serde_compat")]
    pub retry_backoff: Duration,
    #[serde(with = "humantime_serde_compat")]
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
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    #[serde(with = "humantime_serde_compat")]
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
    #[serde(with = "humantime_serde_compat")]
    pub window: Duration,
    #[serde(with = "humantime_serde_compat")]
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
    #[serde(with = "humantime_serde_compat")]
    pub open_for: Duration,
}

/// Serialises durations the way the file writes them (`"30s"`).
mod humantime_serde_compat {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    pub mod option {
        use serde::Serializer;
        use std::time::Duration;

        pub fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(d) => serializer.collect_str(&humantime::format_duration(*d)),
                None => serializer.serialize_none(),
            }
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tls {
    pub mode: TlsMode,
    pub email: Option<String>,
    /// ACME directory URL.
    pub directory: String,
    /// Extra root certificate to trust when talking to the ACME server.
    pub directory_ca: Option<PathBuf>,
    pub challenge: Challenge,
    /// Renew when less than this remains; `None` = a third of the lifetime.
    #[serde(with = "humantime_serde_compat::option")]
    pub renew_before: Option<Duration>,
    /// Account key, certificates and the local CA.
    pub storage: PathBuf,
    /// `mode = "files"`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub redirect_http: bool,
    pub hsts: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Acme,
    Internal,
    Files,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Challenge {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            mode: TlsMode::Off,
            email: None,
            directory: defaults::ACME_DIRECTORY.to_string(),
            directory_ca: None,
            challenge: Challenge::Http01,
            renew_before: None,
            storage: PathBuf::from(defaults::TLS_STORAGE),
            cert: None,
            key: None,
            redirect_http: true,
            hsts: None,
        }
    }
}

/// `[app.NAME]`: a supervised application with N instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    /// argv; no shell.
    pub command: Vec<String>,
    /// Working directory (absolute; relative paths resolve against the config file).
    pub dir: PathBuf,
    pub instances: u32,
    /// Instance i listens on 127.0.0.1:(port + i) and gets PORT=port+i.
    pub port: u16,
    pub env: BTreeMap<String, String>,
    pub restart: Restart,
    #[serde(with = "humantime_serde_compat")]
    pub backoff: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub max_backoff: Duration,
    /// Signal number sent to stop an instance (written as a name, e.g. "TERM").
    pub stop_signal: String,
    #[serde(with = "humantime_serde_compat")]
    pub stop_timeout: Duration,
    pub memory_limit: Option<u64>,
    pub cpu_limit: Option<f64>,
    pub open_files: Option<u64>,
    pub log: AppLog,
    /// How long a new instance may take to pass its health check during a deploy.
    #[serde(with = "humantime_serde_compat")]
    pub start_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// Where an app's output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppLog {
    Stdout,
    Off,
    /// A file, rotated by size.
    File(PathBuf),
}
