//! Can each `[app.NAME]` start? Its program is looked for as the
//! supervisor would run it (`supervise::spawn::preflight`: the same
//! lookup and the same explanations as a failed start, without starting
//! anything), its `dir` must exist, and the ports it is given
//! (`port .. port + 2*instances - 1`, the upper half for rolling deploys)
//! must be free on 127.0.0.1, unless the wharf serving this config holds
//! them through its own instances.

use std::net::{Ipv4Addr, TcpListener};

use super::{held_by, Finding, Running};
use crate::config::{App, Config};
use crate::server::holder;
use crate::supervise::preflight::preflight;

/// Per app: one finding for its program, then its ports.
pub fn check(config: &Config, running: Option<&Running>) -> Vec<Finding> {
    let running = running.filter(|wharf| wharf.serves_this);
    let mut findings = Vec::new();
    for (name, app) in &config.apps {
        findings.push(match preflight(name, app) {
            Ok(program) => Finding::ok(format!(
                "app.{name}: {} can be started in {}",
                program.display(),
                app.dir.display()
            )),
            // The explanation already ends with its fix.
            Err(error) => Finding::fail(format!("app.{name}"), error.to_string(), ""),
        });
        findings.extend(ports(name, app, running));
    }
    findings
}

/// The app's port range: one `ok` line when it is usable, else one line
/// per port that is not.
fn ports(name: &str, app: &App, running: Option<&Running>) -> Vec<Finding> {
    let first = app.port;
    // Config validation keeps the range within 1..=65535.
    let last = u16::try_from(u32::from(first) + 2 * app.instances.max(1) - 1).unwrap_or(u16::MAX);
    let range = format!("{first}-{last}");
    let mut taken = Vec::new();
    let mut served = 0;
    for port in first..=last {
        let error = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_) => continue,
            Err(error) => error,
        };
        let what = format!("app.{name} port {port}");
        if error.kind() != std::io::ErrorKind::AddrInUse {
            taken.push(Finding::fail(
                what,
                format!("cannot listen on 127.0.0.1:{port}: {error}"),
                format!("choose another app.{name}.port"),
            ));
            continue;
        }
        let holder = holder::find_process(port);
        if running.is_some_and(|wharf| wharf.holds_app_port(port, holder.as_ref())) {
            served += 1;
            continue;
        }
        taken.push(Finding::fail(
            what,
            format!(
                "127.0.0.1:{port} is in use{}; instances use ports {range} (the upper half during deploys)",
                held_by(holder.as_ref())
            ),
            format!("stop that process, or move app.{name}.port to a free range"),
        ));
    }
    if !taken.is_empty() {
        return taken;
    }
    match running {
        Some(wharf) if served > 0 => vec![Finding::ok(format!(
            "app.{name} ports {range}: {served} held by the instances of wharf (pid {}), the rest free",
            wharf.pid
        ))],
        _ => vec![Finding::ok(format!("app.{name} ports {range} are free"))],
    }
}
