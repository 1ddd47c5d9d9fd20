//! `[app.NAME]`: a supervised application: its command, instances and
//! ports, restart policy, stopping, limits and output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

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
    #[serde(with = "super::humantime_serde_compat")]
    pub backoff: Duration,
    #[serde(with = "super::humantime_serde_compat")]
    pub max_backoff: Duration,
    /// Signal number sent to stop an instance (written as a name, e.g. "TERM").
    pub stop_signal: String,
    #[serde(with = "super::humantime_serde_compat")]
    pub stop_timeout: Duration,
    pub memory_limit: Option<u64>,
    pub cpu_limit: Option<f64>,
    pub open_files: Option<u64>,
    pub log: AppLog,
    /// How long a new instance may take to pass its health check during a deploy.
    #[serde(with = "super::humantime_serde_compat")]
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
