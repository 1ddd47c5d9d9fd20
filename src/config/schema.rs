//! The typed configuration: what `wharf.toml` means once it has been read,
//! interpolated and checked.
//!
//! These types are plain data. They are built by `config::load` (which owns
//! parsing, `${...}` interpolation and file:line:column errors) and consumed
//! once per reload by `runtime::Snapshot::build`, which turns them into the
//! immutable routing tables the request path reads. Later features add
//! sections (`[tls]`, `[app.*]`) and keys here; every default lives in
//! `defaults` below and is written down in docs/config.md.
//!
//! The sections with most keys have a file each under `schema/`:
//! `[upstream.NAME]` (upstream.rs), `[tls]` (tls.rs) and `[app.NAME]`
//! (app.rs); their types are re-exported here.

mod app;
mod tls;
mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

pub use app::{App, AppLog, Restart};
pub use tls::{Challenge, Tls, TlsMode};
pub use upstream::{Balance, Breaker, HealthCheck, Passive, StatusRange, Upstream, UpstreamServer};

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
    /// `error_pages`: a directory of `404.html`, `502.html`, `5xx.html`...
    /// (absolute) for wharf's own error answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_pages: Option<PathBuf>,
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
    /// `[site.route.headers]`: response headers set on the route's
    /// answers, in the order written; an empty value removes one.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "ser_headers")]
    pub headers: Vec<(String, String)>,
    /// `[site.route.basic_auth]`: the route asks for a user and password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// `[site.route.basic_auth]`.
#[derive(Debug, Clone, Serialize)]
pub struct BasicAuth {
    /// Shown by the browser's login prompt.
    pub realm: String,
    /// (user, bcrypt hash), in the order written.
    #[serde(serialize_with = "ser_headers")]
    pub users: Vec<(String, String)>,
}

/// Route headers render as the table they were written as.
fn ser_headers<S: serde::Serializer>(
    headers: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(headers.len()))?;
    for (name, value) in headers {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

/// What a route does. Exactly one of `upstream`, `static`, `redirect`,
/// `respond` is set in the file.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Action {
    Proxy {
        upstream: String,
        /// The route's path is taken off the request's before it goes
        /// upstream, and sent as `X-Forwarded-Prefix`.
        strip_prefix: bool,
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
