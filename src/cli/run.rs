//! `wharf run`: load the config (or the embedded demo), start serving,
//! reload on SIGHUP, shut down gracefully on SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::demo;
use crate::config::{Action, Config, HostPattern};
use crate::fd_limit::{self, Limit, LimitError};
use crate::observe::logging;
use crate::server::{Server, Source};

pub fn run(path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    // Before anything opens a file: a soft limit of 1,024 would cap wharf
    // at about 500 proxied connections.
    let raised = fd_limit::raise();
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        // Signals are taken over before anything listens: a SIGHUP sent as
        // soon as the first listener answers (a deploy script's reload)
        // would otherwise meet the default action and kill wharf.
        let signals = Signals::new()?;
        let default = Path::new("wharf.toml");
        let (source, is_demo) = match path {
            Some(path) => (Source::File(path), false),
            None if default.exists() => (Source::File(default.to_path_buf()), false),
            None => {
                let source = Source::Embedded {
                    name: "<embedded demo>".to_string(),
                    text: demo::CONFIG.to_string(),
                    vars: demo::vars()?,
                };
                (source, true)
            }
        };
        let config = match source.load() {
            Ok(config) => config,
            Err(errors) => {
                eprintln!("{errors}");
                return Ok(ExitCode::FAILURE);
            }
        };
        logging::init(config.log.format, &config.log.level);
        log_fd_limit(&raised);
        let server = match Server::start(config, source).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("wharf: {error}");
                tracing::error!(error = %error, "cannot start");
                return Ok(ExitCode::FAILURE);
            }
        };
        print_summary(&server, is_demo);
        serve_until_signalled(server, signals).await
    })
}

/// Says what became of the open-file limit: raised (debug), not raised
/// or too low for a busy server (warnings).
fn log_fd_limit(raised: &Result<(Limit, Limit), LimitError>) {
    match raised {
        Ok((before, now)) => {
            if before != now {
                tracing::debug!(from = before.soft, to = now.soft, "open-file limit raised");
            }
            if let Some(advice) = fd_limit::low_limit_advice(now.hard) {
                tracing::warn!(limit = now.hard, "{advice}");
            }
        }
        Err(error) => tracing::warn!(
            error = %error,
            "wharf keeps the open-file limit it was started with; set LimitNOFILE= in its systemd unit (or ulimit -n) if it runs out of files"
        ),
    }
}

/// The signals `wharf run` answers: SIGHUP reloads, SIGUSR1 reopens the
/// access log, SIGTERM and SIGINT stop.
struct Signals {
    hangup: Signal,
    reopen: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            reopen: signal(SignalKind::user_defined1())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

async fn serve_until_signalled(server: Arc<Server>, signals: Signals) -> anyhow::Result<ExitCode> {
    let Signals {
        mut hangup,
        mut reopen,
        mut terminate,
        mut interrupt,
    } = signals;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                // The outcome is logged by reload itself.
                let _ = server.reload().await;
            }
            _ = reopen.recv() => server.reopen_logs(),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tokio::select! {
        _ = server.shutdown() => {}
        // A second signal means "now".
        _ = terminate.recv() => tracing::warn!("second signal: exiting without waiting"),
        _ = interrupt.recv() => tracing::warn!("second signal: exiting without waiting"),
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Tells the user what is served where, in plain words.
fn print_summary(server: &Server, is_demo: bool) {
    let snapshot = server.snapshot();
    let config: &Config = &snapshot.config;
    let mut addrs = server.local_addrs();
    addrs.sort();
    let mut text = String::new();
    if is_demo {
        text.push_str("wharf: no wharf.toml here, serving the embedded demo\n");
    }
    for addr in &addrs {
        let shown = if addr.ip().is_unspecified() {
            format!("http://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        text.push_str(&format!("wharf: listening on {shown}\n"));
    }
    let mut https = server.https_addrs();
    https.sort();
    for addr in &https {
        text.push_str(&format!("wharf: listening on https://{addr} (TLS)\n"));
    }
    if let Some(ca) = server.ca_certificate() {
        text.push_str(&format!(
            "wharf: certificates are signed by the local CA {}; `sudo wharf trust -c {}` makes this machine's browsers and programs trust it\n",
            ca.display(),
            config.source
        ));
    }
    for site in &config.sites {
        let hosts: Vec<String> = site
            .hosts
            .iter()
            .map(|h| match h {
                HostPattern::Any => "any host".to_string(),
                HostPattern::Exact(name) => name.clone(),
                HostPattern::Wildcard(suffix) => format!("*{suffix}"),
            })
            .collect();
        let hosts = if hosts.is_empty() {
            "any host".to_string()
        } else {
            hosts.join(", ")
        };
        for route in &site.routes {
            let what = match &route.action {
                Action::Proxy { upstream, .. } => {
                    match config.upstreams.get(upstream) {
                        Some(u) if u.app.is_some() => {
                            let app = u.app.as_deref().unwrap_or_default();
                            let instances = config.apps.get(app).map_or(0, |a| a.instances);
                            format!("proxy to {upstream} ({instances} supervised instance{} of app {app})", if instances == 1 { "" } else { "s" })
                        }
                        Some(u) => {
                            let servers: Vec<String> =
                                u.servers.iter().map(|s| s.addr.to_string()).collect();
                            format!("proxy to {upstream} ({})", servers.join(", "))
                        }
                        None => format!("proxy to {upstream}"),
                    }
                }
                Action::Static { root, .. } => format!("files from {}", root.display()),
                Action::Redirect { to, status } => format!("redirect {status} to {to}"),
                Action::Respond { status, .. } => format!("fixed response {status}"),
            };
            text.push_str(&format!("wharf:   {hosts} {} -> {what}\n", route.path));
        }
    }
    if let Some(admin) = server.admin_addr() {
        text.push_str(&format!(
            "wharf: admin API on http://{admin} (status page at /, /metrics, /status, POST /reload)\n"
        ));
    }
    eprint!("{text}");
}
