//! Reader for `[upstream.NAME]` pools.
//!
//! In: the `upstream` table; each key is a pool name.
//! Out: pools by name (`BTreeMap`, so the order is stable when printed).
//! Server addresses may be host names (`"localhost:9001"`); they are
//! resolved once here, at load time, so the request path never does DNS.
//! A server is a string or a table (`{ addr = "..." }`), because weights
//! and backup flags attach to the table form.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

use super::schema::{defaults, Balance, Passive, Upstream, UpstreamServer};
use super::server::{parse_ip, split_host_port};
use super::walk::{Ctx, Entry, Span};

const UPSTREAM_KEYS: &[&str] = &["servers", "connect_timeout", "response_timeout"];
const SERVER_KEYS: &[&str] = &["addr"];
const SERVERS_FIX: &str = "write servers = [\"127.0.0.1:9001\"]";

/// Every pool name written in the file, valid or not, so that routes
/// pointing at a broken pool are not reported twice.
pub(crate) fn names(entry: &Option<Entry>) -> Vec<String> {
    entry
        .as_ref()
        .and_then(|e| e.item.as_table_like())
        .map(|t| t.iter().map(|(name, _)| name.to_string()).collect())
        .unwrap_or_default()
}

pub(crate) fn upstreams(ctx: &mut Ctx, entry: Option<Entry>) -> BTreeMap<String, Upstream> {
    let mut pools = BTreeMap::new();
    let Some(entry) = entry else {
        return pools;
    };
    let Some(table) = entry.item.as_table_like() else {
        ctx.expected("a table", &entry.key, entry.item, &entry.span);
        return pools;
    };
    let all = super::walk::Fields::new(table, &entry.key, entry.span.clone(), &[]).all();
    for pool in all {
        let name = pool.key.trim_start_matches("upstream.").to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            ctx.error(
                &pool.key_span,
                &pool.key,
                format!("{name:?} is not a valid upstream name"),
                Some("use letters, digits, `_` and `-` only, e.g. [upstream.app]".into()),
            );
        }
        if let Some(upstream) = one(ctx, &pool) {
            pools.insert(name, upstream);
        }
    }
    pools
}

fn one(ctx: &mut Ctx, entry: &Entry) -> Option<Upstream> {
    let fields = ctx.table(entry, UPSTREAM_KEYS)?;
    let mut upstream = Upstream {
        servers: Vec::new(),
        connect_timeout: defaults::CONNECT_TIMEOUT,
        response_timeout: defaults::RESPONSE_TIMEOUT,
        balance: Balance::RoundRobin,
        retries: defaults::RETRIES,
        retry_backoff: defaults::RETRY_BACKOFF,
        retry_backoff_max: defaults::RETRY_BACKOFF_MAX,
        retry_budget: defaults::RETRY_BUDGET,
        health: None,
        passive: Some(Passive {
            max_fails: defaults::PASSIVE_MAX_FAILS,
            window: defaults::PASSIVE_WINDOW,
            eject_for: defaults::PASSIVE_EJECT_FOR,
            max_ejected_percent: defaults::PASSIVE_MAX_EJECTED_PERCENT,
        }),
        breaker: None,
    };
    match fields.get("servers") {
        Some(servers) => {
            let written = read_servers(ctx, &servers, &mut upstream.servers);
            if written == 0 {
                let message = "has no servers".to_string();
                ctx.error(
                    &servers.span,
                    &servers.key,
                    message,
                    Some(SERVERS_FIX.into()),
                );
            }
        }
        None => {
            let key = fields.key("servers");
            let message = "is missing: a pool needs at least one server".to_string();
            ctx.error(&fields.span, &key, message, Some(SERVERS_FIX.into()));
        }
    }
    if let Some(d) = fields.get("connect_timeout").and_then(|e| ctx.duration(&e)) {
        upstream.connect_timeout = d;
    }
    if let Some(d) = fields
        .get("response_timeout")
        .and_then(|e| ctx.duration(&e))
    {
        upstream.response_timeout = d;
    }
    fields.finish(ctx);
    Some(upstream)
}

/// Reads `servers` into `out`; returns how many entries were written.
fn read_servers(ctx: &mut Ctx, entry: &Entry, out: &mut Vec<UpstreamServer>) -> usize {
    if entry.item.is_array_of_tables() {
        let tables = ctx.tables(entry, SERVER_KEYS);
        let count = tables.len();
        for fields in tables {
            if let Some(server) = server_table(ctx, fields) {
                out.push(server);
            }
        }
        return count;
    }
    let Some(elements) = ctx.array(entry) else {
        return 1; // wrong type, already reported
    };
    for (key, value) in &elements {
        let server = if let Some(table) = value.as_inline_table() {
            let fields = super::walk::Fields::new(table, key, value.span(), SERVER_KEYS);
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
        out.extend(server);
    }
    elements.len()
}

fn server_table(ctx: &mut Ctx, fields: super::walk::Fields) -> Option<UpstreamServer> {
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
    fields.finish(ctx);
    addr.map(|addr| UpstreamServer {
        addr,
        weight: defaults::WEIGHT,
        backup: false,
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
