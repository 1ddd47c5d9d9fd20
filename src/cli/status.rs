//! `wharf status`: what a running wharf is doing, as tables in the
//! terminal (or its raw JSON with `--json`), from the admin API's
//! `GET /status`. With `--ready`, only whether it is ready to serve
//! (`GET /readyz`), as an exit code for container health checks.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::admin_client;
use crate::observe::status::Status;

pub fn status(
    path: Option<&Path>,
    admin: Option<SocketAddr>,
    token: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (admin, config_token) = admin_client::resolve(path, admin)?;
    let token = token.or(config_token);
    let runtime = super::runtime()?;
    let (code, answer) = runtime.block_on(admin_client::call(
        admin,
        token.as_deref(),
        http::Method::GET,
        "/status",
    ))?;
    if !code.is_success() {
        let reason = answer["error"].as_str().unwrap_or("no reason given");
        anyhow::bail!(
            "the admin API at {admin} answered {code}: {reason}{}",
            if code == http::StatusCode::UNAUTHORIZED {
                "\npass the token with --token or WHARF_ADMIN_TOKEN"
            } else {
                ""
            }
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let status: Status = serde_json::from_value(answer)
        .context("the admin API answered with a status this wharf does not understand")?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", render(&status, color));
    Ok(ExitCode::SUCCESS)
}

/// How long `--ready` waits for an answer: a health check that hangs
/// tells the orchestrator nothing.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `wharf status --ready`: exit 0 when the running wharf answers
/// `GET /readyz` with 200, and 1 (with the reason on stderr) otherwise.
pub fn ready(path: Option<&Path>, admin: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    // With --admin the config is not read: a probe runs every few seconds,
    // and /readyz needs no token.
    let admin = match admin {
        Some(addr) => addr,
        None => admin_client::resolve(path, None)?.0,
    };
    // One thread: a probe on a 64-core node needs no 64 workers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let asked = runtime.block_on(async {
        tokio::time::timeout(
            READY_TIMEOUT,
            admin_client::call(admin, None, http::Method::GET, "/readyz"),
        )
        .await
    });
    let (code, answer) = match asked {
        Ok(answer) => answer?,
        Err(_) => anyhow::bail!(
            "the admin API at {admin} did not answer within {}s",
            READY_TIMEOUT.as_secs()
        ),
    };
    if code.is_success() {
        println!("ready");
        return Ok(ExitCode::SUCCESS);
    }
    let state = answer["status"].as_str().unwrap_or("no reason given");
    let apps: Vec<&str> = answer["apps_not_serving"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let apps = if apps.is_empty() {
        String::new()
    } else {
        format!("; no instance serving yet: {}", apps.join(", "))
    };
    eprintln!("wharf: not ready: the admin API at {admin} answered {code} ({state}{apps})");
    Ok(ExitCode::FAILURE)
}

/// The whole report.
pub fn render(status: &Status, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "wharf {} · pid {} · up {} · {}\n",
        status.version,
        status.pid,
        duration(Some(status.uptime_seconds)),
        status.config
    ));
    let traffic = &status.traffic;
    let last = traffic.history.last();
    out.push_str(&format!(
        "traffic: {} req/s · {} 5xx/s · p95 {} · {} in flight · {} connections · {} requests since start\n",
        last.map_or("-".into(), |p| format!("{:.1}", p.requests_per_second)),
        last.map_or("-".into(), |p| format!("{:.1}", p.errors_per_second)),
        last.and_then(|p| p.latency_p95_ms)
            .map_or("-".into(), |ms| format!("≤{ms:.0} ms")),
        traffic.in_flight,
        traffic.connections_open,
        traffic.requests_total,
    ));

    let paint = |state: &str| -> String {
        if !color {
            return state.to_string();
        }
        let code = match state {
            "up" | "running" => "32",
            "down" | "ejected" | "breaker_open" | "failed" => "31",
            "draining" | "starting" | "backoff" => "33",
            _ => "2",
        };
        format!("\x1b[{code}m{state}\x1b[0m")
    };

    let mut servers = Table::new(&[
        "UPSTREAM",
        "SERVER",
        "STATE",
        "HEALTH",
        "BREAKER",
        ">IN FLIGHT",
        ">REQUESTS",
        ">FAILURES",
        ">LATENCY",
    ]);
    for upstream in &status.upstreams {
        for server in &upstream.servers {
            let address = if server.backup {
                format!("{} (backup)", server.address)
            } else {
                server.address.clone()
            };
            servers.row(vec![
                upstream.name.clone(),
                address,
                paint(&server.state),
                server.health.clone(),
                server.breaker.clone(),
                server.in_flight.to_string(),
                server.requests_total.to_string(),
                server.failures_total.to_string(),
                server
                    .latency_ms
                    .map_or("-".into(), |ms| format!("{ms:.1} ms")),
            ]);
        }
    }
    out.push('\n');
    out.push_str(&servers.render("no upstreams configured"));

    let mut apps = Table::new(&[
        "APP",
        ">INSTANCE",
        "STATE",
        ">PID",
        ">PORT",
        ">UPTIME",
        ">RESTARTS",
    ]);
    for instance in &status.apps {
        apps.row(vec![
            instance.app.clone(),
            instance.index.to_string(),
            paint(&instance.state),
            instance.pid.map_or("-".into(), |pid| pid.to_string()),
            instance.port.to_string(),
            duration(instance.uptime_seconds),
            instance.restarts.to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&apps.render("no apps supervised"));

    let mut certificates = Table::new(&["CERTIFICATE", "EXPIRES", ">DAYS LEFT", "ISSUER"]);
    for certificate in &status.certificates {
        let expires = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(certificate.not_after),
        )
        .to_string();
        let days = certificate.days_left.to_string();
        let days = match certificate.days_left {
            d if d < 7 => paint_as(&days, "31", color),
            d if d < 21 => paint_as(&days, "33", color),
            _ => days,
        };
        certificates.row(vec![
            certificate.host.clone(),
            expires,
            days,
            certificate.issuer.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&certificates.render("no certificates"));

    let mut sites = Table::new(&["SITE", "PATH", "ACTION", "TARGET", ">REQUESTS", ">5XX"]);
    for site in &status.sites {
        let hosts = if site.hosts.is_empty() {
            "*".to_string()
        } else {
            site.hosts.join(", ")
        };
        for (index, route) in site.routes.iter().enumerate() {
            sites.row(vec![
                if index == 0 {
                    hosts.clone()
                } else {
                    String::new()
                },
                route.path.clone(),
                route.action.clone(),
                route.target.clone(),
                route.requests_total.to_string(),
                route.errors_total.to_string(),
            ]);
        }
    }
    out.push('\n');
    out.push_str(&sites.render("no sites"));
    out
}

fn paint_as(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn duration(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s} s"),
        Some(s) if s < 7200 => format!("{} min", s / 60),
        Some(s) if s < 172_800 => format!("{} h", s / 3600),
        Some(s) => format!("{} d", s / 86_400),
    }
}

/// A plain-text table; headers starting with '>' are right-aligned.
struct Table {
    headers: Vec<(String, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers
                .iter()
                .map(|h| match h.strip_prefix('>') {
                    Some(name) => (name.to_string(), true),
                    None => (h.to_string(), false),
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, empty: &str) -> String {
        let width = |text: &str| visible_width(text);
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            for (slot, cell) in widths.iter_mut().zip(row) {
                *slot = (*slot).max(width(cell));
            }
        }
        let line = |cells: Vec<&str>| {
            let mut text = String::new();
            for (index, cell) in cells.iter().enumerate() {
                let pad = widths[index].saturating_sub(width(cell));
                let right = self.headers[index].1;
                if index > 0 {
                    text.push_str("  ");
                }
                if right {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    if index + 1 < cells.len() {
                        text.push_str(&" ".repeat(pad));
                    }
                }
            }
            text.push('\n');
            text
        };
        let mut out = line(self.headers.iter().map(|(h, _)| h.as_str()).collect());
        if self.rows.is_empty() {
            out.push_str(&format!("({empty})\n"));
        }
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// Characters on screen, ignoring ANSI color codes.
fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

#[cfg(test)]
mod tests;
