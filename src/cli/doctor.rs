//! `wharf doctor`: load the config as `wharf check` does, find the wharf
//! already running it (its admin API), then run the machine checks of
//! `crate::doctor` and print one line per check and a summary. Exit 1
//! when any check failed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::admin_client;
use crate::config::{self, Config};
use crate::doctor::{self, Finding, Report, Running};
use crate::observe::status::Status;

/// How long the running wharf's admin API may take to answer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

pub fn doctor(path: &Path) -> anyhow::Result<ExitCode> {
    let what = format!("config {}", path.display());
    let config = match config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            println!("{errors}");
            let mut report = Report::default();
            report.push(Finding::fail(
                what,
                format!("{} cannot be loaded", path.display()),
                "fix the errors above, then run wharf doctor again",
            ));
            print!("{report}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let mut report = Report::default();
        report.push(Finding::ok(format!("{what} is valid")));
        if let Some(warning) = config::admin_warning(&config.server) {
            report.push(Finding::warn("server.admin", warning, ""));
        }
        let running = running(&config, path).await;
        let checked = doctor::examine(&config, running.as_ref()).await;
        report.findings.extend(checked.findings);
        report
    });
    print!("{report}");
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The wharf answering `GET /status` on the config's admin address, if any.
async fn running(config: &Config, path: &Path) -> Option<Running> {
    let admin: SocketAddr = config.server.admin.filter(|addr| addr.port() != 0)?;
    let token = config.server.admin_token.as_deref();
    let call = admin_client::call(admin, token, http::Method::GET, "/status");
    let (code, answer) = tokio::time::timeout(ADMIN_TIMEOUT, call).await.ok()?.ok()?;
    if !code.is_success() {
        return None;
    }
    let status: Status = serde_json::from_value(answer).ok()?;
    Some(Running::from_status(&status, admin, path))
}
