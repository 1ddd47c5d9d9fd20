//! Readers for `[server]` and `[log]`.
//!
//! In: the section's table (or nothing, when the file leaves it out).
//! Out: `Server` and `Log` with every default from `schema::defaults`
//! filled in; problems go to the `Ctx`. Addresses here are IP literals,
//! never host names: a listener must not depend on DNS at start-up.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use super::schema::{defaults, AccessLog, Log, LogFormat, Server};
use super::walk::{Ctx, Entry, Span};

const SERVER_KEYS: &[&str] = &[
    "listen",
    "admin",
    "trusted_proxies",
    "shutdown_timeout",
    "header_timeout",
    "idle_timeout",
    "max_header_size",
    "max_body_size",
    "admin_token",
    "https",
];
const LOG_KEYS: &[&str] = &["format", "access", "level"];
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];
const ADDR_FIX: &str = "write host:port, e.g. \"0.0.0.0:8080\" or \"[::1]:8080\"";

pub(crate) fn server(ctx: &mut Ctx, entry: Option<Entry>) -> Server {
    let mut server = Server {
        listen: Vec::new(),
        admin: default_addr(defaults::ADMIN),
        trusted_proxies: Vec::new(),
        shutdown_timeout: defaults::SHUTDOWN_TIMEOUT,
        header_timeout: defaults::HEADER_TIMEOUT,
        idle_timeout: defaults::IDLE_TIMEOUT,
        max_header_size: defaults::MAX_HEADER_SIZE,
        max_body_size: defaults::MAX_BODY_SIZE,
        https: Vec::new(),
        admin_token: None,
    };
    let fields = entry.as_ref().and_then(|e| ctx.table(e, SERVER_KEYS));
    let Some(fields) = fields else {
        server.listen = default_listen(ctx, &None);
        return server;
    };
    match fields.get("listen") {
        Some(e) => {
            for (key, text, span) in ctx.strings(&e).unwrap_or_default() {
                if let Some(addr) = socket_addr(ctx, &key, &text, &span) {
                    server.listen.push(addr);
                }
            }
            if e.item.as_array().is_some_and(|a| a.is_empty()) {
                let fix = format!("list at least one address, e.g. [\"{}\"]", defaults::LISTEN);
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix));
            }
        }
        None => server.listen = default_listen(ctx, &fields.span),
    }
    if let Some(e) = fields.get("https") {
        for (key, text, span) in ctx.strings(&e).unwrap_or_default() {
            if let Some(addr) = socket_addr(ctx, &key, &text, &span) {
                if server.listen.contains(&addr) && addr.port() != 0 {
                    let message = format!("{addr} is also in server.listen");
                    let fix = "an address serves either plain HTTP or HTTPS; use another port";
                    ctx.error(&span, &key, message, Some(fix.into()));
                } else {
                    server.https.push(addr);
                }
            }
        }
    }
    if let Some(e) = fields.get("admin") {
        if let Some(text) = ctx.string(&e) {
            server.admin = if text == "off" {
                None
            } else {
                socket_addr(ctx, &e.key, &text, &e.span).or(server.admin)
            };
        }
    }
    if let Some(e) = fields.get("admin_token") {
        if let Some(token) = ctx.string(&e) {
            if token.trim().is_empty() {
                let fix = "write a long random string, e.g. admin_token = \"${file:/etc/wharf/admin-token}\"";
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix.into()));
            } else {
                // Never printed by `wharf check --print`.
                ctx.secrets.push(token.clone());
                server.admin_token = Some(token);
            }
        }
    }
    if let Some(e) = fields.get("trusted_proxies") {
        for (key, text, span) in ctx.strings(&e).unwrap_or_default() {
            match network(&text) {
                Some(net) => server.trusted_proxies.push(net),
                None => ctx.error(
                    &span,
                    &key,
                    format!("{text:?} is not a CIDR or IP address"),
                    Some("write e.g. \"10.0.0.0/8\", \"192.168.1.10\" or \"fd00::/8\"".into()),
                ),
            }
        }
    }
    let durations = [
        ("shutdown_timeout", &mut server.shutdown_timeout),
        ("header_timeout", &mut server.header_timeout),
        ("idle_timeout", &mut server.idle_timeout),
    ];
    for (name, slot) in durations {
        if let Some(value) = fields.get(name).and_then(|e| ctx.duration(&e)) {
            *slot = value;
        }
    }
    let sizes = [
        ("max_header_size", &mut server.max_header_size),
        ("max_body_size", &mut server.max_body_size),
    ];
    for (name, slot) in sizes {
        if let Some(value) = fields.get(name).and_then(|e| ctx.size(&e)) {
            *slot = value;
        }
    }
    fields.finish(ctx);
    server
}

pub(crate) fn log(ctx: &mut Ctx, entry: Option<Entry>) -> Log {
    let mut log = Log {
        format: LogFormat::Json,
        access: AccessLog::Stdout,
        level: defaults::LOG_LEVEL.to_string(),
    };
    let Some(fields) = entry.as_ref().and_then(|e| ctx.table(e, LOG_KEYS)) else {
        return log;
    };
    if let Some(e) = fields.get("format") {
        match ctx.string(&e).as_deref() {
            Some("json") => log.format = LogFormat::Json,
            Some("pretty") => log.format = LogFormat::Pretty,
            Some(other) => {
                let message = format!("unknown format {other:?}");
                ctx.error(
                    &e.span,
                    &e.key,
                    message,
                    Some("write \"json\" or \"pretty\"".into()),
                );
            }
            None => {}
        }
    }
    if let Some(e) = fields.get("access") {
        match ctx.string(&e).as_deref() {
            Some("stdout") => log.access = AccessLog::Stdout,
            Some("stderr") => log.access = AccessLog::Stderr,
            Some("off") => log.access = AccessLog::Off,
            Some("") => ctx.error(
                &e.span,
                &e.key,
                "is empty".into(),
                Some("write \"stdout\", \"stderr\", \"off\" or a file path".into()),
            ),
            Some(path) => log.access = AccessLog::File(ctx.base_dir.join(path)),
            None => {}
        }
    }
    if let Some(e) = fields.get("level") {
        if let Some(level) = ctx.string(&e) {
            let level = level.to_ascii_lowercase();
            if LEVELS.contains(&level.as_str()) {
                log.level = level;
            } else {
                let fix = format!("write one of: {}", LEVELS.join(", "));
                ctx.error(
                    &e.span,
                    &e.key,
                    format!("unknown level {level:?}"),
                    Some(fix),
                );
            }
        }
    }
    fields.finish(ctx);
    log
}

/// `defaults::LISTEN`, interpolated (it reads `$PORT`). The file does
/// not say this address, so a bad one is blamed on `PORT`, not on a
/// `listen` the user never wrote.
fn default_listen(ctx: &mut Ctx, span: &Span) -> Vec<SocketAddr> {
    let key = "server.listen";
    let Some(text) = ctx.expand(key, defaults::LISTEN, span) else {
        return Vec::new();
    };
    let addr = split_host_port(&text)
        .ok()
        .and_then(|(host, port)| Some(SocketAddr::new(parse_ip(host)?, port)));
    if addr.is_none() {
        let port = text
            .rsplit_once(':')
            .map_or(text.as_str(), |(_, port)| port);
        let message = format!(
            "the environment variable PORT is {port:?}, not a port number \
             (server.listen is not written, so it is \"{}\")",
            defaults::LISTEN
        );
        let fix = "set PORT to a number from 0 to 65535, or write listen = [\"0.0.0.0:8080\"] in [server]";
        ctx.error(span, key, message, Some(fix.into()));
    }
    addr.into_iter().collect()
}

fn default_addr(text: &str) -> Option<SocketAddr> {
    text.parse().ok()
}

/// Parses `"host:port"` where host is an IP literal (`[...]` for IPv6),
/// reporting why it is not one.
pub(crate) fn socket_addr(ctx: &mut Ctx, key: &str, text: &str, span: &Span) -> Option<SocketAddr> {
    match split_host_port(text).and_then(|(host, port)| {
        // `localhost` as nginx and Caddy take it: the IPv4 loopback, without
        // a lookup (other names are not resolved to listen on).
        let ip = if host.eq_ignore_ascii_case("localhost") {
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        } else {
            parse_ip(host)
        };
        ip.map(|ip| SocketAddr::new(ip, port))
            .ok_or_else(|| format!("`{host}` is not an IP address (or `localhost`)"))
    }) {
        Ok(addr) => Some(addr),
        Err(reason) => {
            let message = format!("{text:?} is not an address: {reason}");
            ctx.error(span, key, message, Some(ADDR_FIX.into()));
            None
        }
    }
}

/// Splits `"host:port"`; the host keeps IPv6 brackets stripped.
pub(crate) fn split_host_port(text: &str) -> Result<(&str, u16), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("missing the port".to_string());
    };
    if host.is_empty() {
        return Err("missing the host".to_string());
    }
    let port: u16 = port.parse().map_err(|_| "invalid port".to_string())?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| "unclosed `[` around the IPv6 address".to_string())?,
        None if host.contains(':') => {
            return Err("an IPv6 address needs brackets, e.g. [::1]:8080".to_string())
        }
        None => host,
    };
    Ok((host, port))
}

pub(crate) fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse::<std::net::Ipv4Addr>()
        .map(IpAddr::V4)
        .or_else(|_| host.parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()
}

/// Why the admin API's address deserves a second look, if it does: the
/// admin API on a non-loopback address without `admin_token` serves only
/// loopback clients, which is rarely what binding it there meant.
pub fn admin_warning(server: &Server) -> Option<String> {
    let addr = server.admin?;
    if addr.ip().is_loopback() {
        return None;
    }
    match &server.admin_token {
        None => Some(format!(
            "server.admin = \"{addr}\" is not a loopback address and server.admin_token is not set: \
             the admin API will refuse every client but loopback; set admin_token \
             (e.g. admin_token = \"${{file:/etc/wharf/admin-token}}\") or bind admin to 127.0.0.1"
        )),
        Some(token) if token.len() < 16 => Some(format!(
            "server.admin_token is only {} characters long and the admin API listens on {addr}; \
             use at least 16 random characters (e.g. `openssl rand -hex 32`)",
            token.len()
        )),
        Some(_) => None,
    }
}

/// A CIDR, or a bare IP taken as a single-address network (/32 or /128).
fn network(text: &str) -> Option<IpNet> {
    if text.contains('/') {
        text.parse().ok()
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    }
}
