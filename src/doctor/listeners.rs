//! Can wharf open its listeners (`server.listen`, `server.https`,
//! `server.admin`)? Each is bound as `wharf run` binds it
//! (`server::listener::bind`, which explains a taken port, a privileged
//! one and an address not on this machine) and let go at once. A port
//! held by the wharf already serving this config is fine: `wharf reload`
//! applies a change there.

use std::net::SocketAddr;

use super::{held_by, Finding, Running};
use crate::config::Config;
use crate::server::{holder, listener};

/// One finding per listener address. Must run inside a tokio runtime.
pub fn check(config: &Config, running: Option<&Running>) -> Vec<Finding> {
    let server = &config.server;
    let addresses = server
        .listen
        .iter()
        .map(|addr| ("server.listen", *addr))
        .chain(server.https.iter().map(|addr| ("server.https", *addr)))
        .chain(server.admin.map(|addr| ("server.admin", addr)));
    addresses
        .map(|(key, addr)| bind(key, addr, running))
        .collect()
}

fn bind(key: &str, addr: SocketAddr, running: Option<&Running>) -> Finding {
    let what = format!("{key} {addr}");
    let error = match listener::bind(addr) {
        Ok(socket) => {
            drop(socket);
            return if addr.port() == 0 {
                Finding::ok(format!("{what}: wharf picks a free port at start"))
            } else {
                Finding::ok(format!("{what} can be bound"))
            };
        }
        Err(error) => error,
    };
    if error.source.kind() != std::io::ErrorKind::AddrInUse {
        let mut fix = error.fix.to_string();
        if error.source.kind() == std::io::ErrorKind::PermissionDenied {
            fix.push_str(&format!(
                ", e.g. run wharf as a service: `wharf export systemd --user wharf` writes a unit \
                 that grants it, or `sudo setcap cap_net_bind_service=+ep {}`",
                binary()
            ));
        }
        return Finding::fail(what, error.source.to_string(), fix);
    }
    let holder = holder::find_process(addr.port());
    match running {
        Some(wharf) if wharf.serves_this && wharf.holds_listener(holder.as_ref()) => {
            Finding::ok(format!(
                "wharf (pid {}) is serving on {addr}; `wharf reload` applies a changed config",
                wharf.pid
            ))
        }
        Some(wharf) if holder.as_ref().is_some_and(|h| h.pid == wharf.pid) => Finding::fail(
            what,
            format!(
                "{addr} is in use by another wharf (pid {}) running {}",
                wharf.pid, wharf.config
            ),
            "stop that wharf, or give this config other ports",
        ),
        _ => Finding::fail(
            what,
            format!("{}{}", error.source, held_by(holder.as_ref())),
            error.fix,
        ),
    }
}

/// This wharf binary, for the setcap command.
fn binary() -> String {
    std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "$(command -v wharf)".to_string())
}
