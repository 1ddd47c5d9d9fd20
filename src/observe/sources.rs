//! What the HTTPS and supervision subsystems tell the metrics and the
//! status page: certificates with their expiry, and app instances.
//!
//! These are plain records so observe/ does not depend on how those
//! subsystems store their state; each fills its list from its own state
//! when asked (at scrape or status time, never on the request path).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::server::Server;

/// One certificate wharf serves.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    /// The host name it is for (its first subject name).
    pub host: String,
    /// Every DNS name it covers.
    pub names: Vec<String>,
    /// Unix seconds after which clients reject it.
    pub not_after: u64,
    /// Who issued it (its issuer's distinguished name).
    pub issuer: String,
}

impl CertificateInfo {
    /// Whole days left before `not_after` (negative once expired).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        let now = unix_seconds(now) as i64;
        (self.not_after as i64 - now).div_euclid(86_400)
    }
}

/// One supervised app instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceInfo {
    pub app: String,
    pub index: u32,
    pub pid: Option<u32>,
    pub port: u16,
    /// Where it listens (the address of its upstream member).
    #[serde(skip)]
    pub addr: SocketAddr,
    /// "starting", "running", "backoff", "stopping", "stopped" or "exited".
    pub state: String,
    /// Whether the instance is up (running and, when checked, healthy).
    pub up: bool,
    /// Seconds since it last started, while it runs.
    pub uptime_seconds: Option<u64>,
    pub restarts: u64,
}

/// Certificates the server holds now (from the TLS subsystem's store).
pub fn certificates(server: &Server) -> Vec<CertificateInfo> {
    server
        .certificates()
        .into_iter()
        .map(|c| CertificateInfo {
            host: c.host,
            names: c.names,
            not_after: unix_seconds(c.not_after),
            issuer: c.issuer,
        })
        .collect()
}

/// App instances the server supervises now.
pub fn instances(server: &Server) -> Vec<InstanceInfo> {
    server
        .instances()
        .into_iter()
        .map(|i| InstanceInfo {
            up: i.serving,
            state: serde_json::to_value(i.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            app: i.app,
            index: i.index,
            pid: i.pid,
            port: i.port,
            addr: i.addr,
            uptime_seconds: i.uptime_seconds,
            restarts: u64::from(i.restarts),
        })
        .collect()
}

pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `POST /apps/NAME/deploy`: a rolling deploy of one app, answered when
/// it is done.
pub async fn deploy(
    server: &Server,
    app: &str,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    use crate::supervise::DeployError;
    match server.deploy(app).await {
        Ok(()) => (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "deployed", "app": app })),
        ),
        Err(error) => {
            let status = match error {
                DeployError::UnknownApp(_) => axum::http::StatusCode::NOT_FOUND,
                _ => {
                    // In wharf's own log too, not only in the answer to
                    // whoever asked (as a deploy after a reload is).
                    tracing::error!(app = %app, error = %error, "deploy failed");
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            (
                status,
                axum::Json(serde_json::json!({ "status": "failed", "error": error.to_string() })),
            )
        }
    }
}
