//! The `servers` of a pool: each a string or a table with `addr`,
//! `weight` and `backup`, host names resolved once at load time, and the
//! pool checked as a whole (not empty, no address twice, not only
//! backups).

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;

use super::super::schema::{defaults, UpstreamServer};
use super::super::server::{parse_ip, split_host_port};
use super::super::walk::{Ctx, Entry, Fields, Span};
use super::{whole, SERVERS_FIX};

const SERVER_KEYS: &[&str] = &["addr", "weight", "backup"];
const WEIGHTS: RangeInclusive<i64> = 1..=1000;

/// Reads `servers` and checks the pool as a whole: not empty, no address
/// twice, at least one server that is not a backup.
pub(super) fn servers(ctx: &mut Ctx, entry: &Entry) -> Vec<UpstreamServer> {
    let mut read = Vec::new();
    let written = read_servers(ctx, entry, &mut read);
    if written == 0 {
        let message = "has no servers".to_string();
        ctx.error(&entry.span, &entry.key, message, Some(SERVERS_FIX.into()));
    }
    let mut out: Vec<UpstreamServer> = Vec::with_capacity(read.len());
    let mut keys: Vec<String> = Vec::with_capacity(read.len());
    for (key, span, server) in read {
        if let Some(i) = out.iter().position(|s| s.addr == server.addr) {
            let message = format!("{} is listed twice (also at {})", server.addr, keys[i]);
            let fix = "remove one of them; to send it more traffic, give it a higher weight";
            ctx.error(&span, &key, message, Some(fix.into()));
            continue;
        }
        keys.push(key);
        out.push(server);
    }
    if !out.is_empty() && out.iter().all(|s| s.backup) {
        let message = "at least one server must not be a backup".to_string();
        let fix = "remove `backup = true` from one server, or add a primary server";
        ctx.error(&entry.span, &entry.key, message, Some(fix.into()));
    }
    out
}

/// Reads `servers` into `out` as (key, span, server); returns how many
/// entries were written, good or bad.
fn read_servers(
    ctx: &mut Ctx,
    entry: &Entry,
    out: &mut Vec<(String, Span, UpstreamServer)>,
) -> usize {
    if entry.item.is_array_of_tables() {
        let tables = ctx.tables(entry, SERVER_KEYS);
        let count = tables.len();
        for fields in tables {
            let (key, span) = (fields.path.clone(), fields.span.clone());
            if let Some(server) = server_table(ctx, fields) {
                out.push((key, span, server));
            }
        }
        return count;
    }
    let Some(elements) = ctx.array(entry) else {
        return 1; // wrong type, already reported
    };
    for (key, value) in &elements {
        let server = if let Some(table) = value.as_inline_table() {
            let fields = Fields::new(table, key, value.span(), SERVER_KEYS);
            server_table(ctx, fields)
        } else {
            ctx.value_string(key, value)
                .and_then(|text| resolve(ctx, key, &text, &value.span()))
                .map(|addr| UpstreamServer {
                    addr,
                    weight: defaults::WEIGHT,
                    backup: false,
                })
        };
        out.extend(server.map(|s| (key.clone(), value.span(), s)));
    }
    elements.len()
}

fn server_table(ctx: &mut Ctx, fields: Fields) -> Option<UpstreamServer> {
    let addr = match fields.get("addr") {
        Some(e) => ctx
            .string(&e)
            .and_then(|text| resolve(ctx, &e.key, &text, &e.span)),
        None => {
            let key = fields.key("addr");
            let fix = "write { addr = \"127.0.0.1:9001\" }".to_string();
            ctx.error(&fields.span, &key, "is missing".into(), Some(fix));
            None
        }
    };
    let weight = match fields.get("weight") {
        Some(e) => whole(ctx, &e, WEIGHTS, "use a weight between 1 and 1000"),
        None => Some(defaults::WEIGHT),
    };
    let backup = match fields.get("backup") {
        Some(e) => ctx.boolean(&e),
        None => Some(false),
    };
    fields.finish(ctx);
    Some(UpstreamServer {
        addr: addr?,
        weight: weight?,
        backup: backup?,
    })
}

/// `"host:port"`, where host may be a name resolved now.
fn resolve(ctx: &mut Ctx, key: &str, text: &str, span: &Span) -> Option<SocketAddr> {
    let fix = Some("write host:port, e.g. \"127.0.0.1:9001\" or \"localhost:9001\"".to_string());
    let (host, port) = match split_host_port(text) {
        Ok(parts) => parts,
        Err(reason) => {
            ctx.error(
                span,
                key,
                format!("{text:?} is not an address: {reason}"),
                fix,
            );
            return None;
        }
    };
    if let Some(ip) = parse_ip(host) {
        return Some(SocketAddr::new(ip, port));
    }
    match (host, port).to_socket_addrs() {
        // Prefer IPv4: "localhost" often lists ::1 first while apps bind 127.0.0.1.
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let chosen = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied();
            if chosen.is_none() {
                let message = format!("`{host}` resolves to no address");
                ctx.error(span, key, message, fix);
            }
            chosen
        }
        Err(e) => {
            ctx.error(span, key, format!("cannot resolve `{host}`: {e}"), fix);
            None
        }
    }
}
