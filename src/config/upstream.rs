//! Reader for `[upstream.NAME]` pools: servers, balancing and retries.
//!
//! In: the `upstream` table; each key is a pool name.
//! Out: pools by name (`BTreeMap`, so the order is stable when printed).
//! Server addresses may be host names (`"localhost:9001"`); they are
//! resolved once here, at load time, so the request path never does DNS.
//! A server is a string or a table (`{ addr = "...", weight = 3, backup = true }`),
//! because weights and backup flags attach to the table form.
//! Health checks, passive ejection and the breaker are read by
//! `upstream_health`; the number helpers shared with it live here.
//!
//! Servers, their addresses and the checks on the pool as a whole are
//! read in `upstream/servers.rs`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::closest;
use super::schema::{defaults, Balance, Upstream};
use super::upstream_health;
use super::walk::{Ctx, Entry, Fields};

mod servers;

use servers::servers;

const UPSTREAM_KEYS: &[&str] = &[
    "app",
    "balance",
    "servers",
    "connect_timeout",
    "response_timeout",
    "retries",
    "retry_backoff",
    "retry_backoff_max",
    "retry_budget",
    "health",
    "passive",
    "breaker",
];
const SERVERS_FIX: &str = "write servers = [\"127.0.0.1:9001\"]";
const BALANCE: &[(&str, Balance)] = &[
    ("round_robin", Balance::RoundRobin),
    ("least_conn", Balance::LeastConn),
    ("ip_hash", Balance::IpHash),
    ("p2c", Balance::P2c),
    ("random", Balance::Random),
];
const RETRIES: RangeInclusive<i64> = 0..=10;

/// Every pool name written in the file, valid or not, so that routes
/// pointing at a broken pool are not reported twice.
pub(crate) fn names(entry: &Option<Entry>) -> Vec<String> {
    entry
        .as_ref()
        .and_then(|e| e.item.as_table_like())
        .map(|t| t.iter().map(|(name, _)| name.to_string()).collect())
        .unwrap_or_default()
}

pub(crate) fn upstreams(
    ctx: &mut Ctx,
    entry: Option<Entry>,
    app_names: &[String],
) -> BTreeMap<String, Upstream> {
    let mut pools = BTreeMap::new();
    let Some(entry) = entry else {
        return pools;
    };
    let Some(table) = entry.item.as_table_like() else {
        ctx.expected("a table", &entry.key, entry.item, &entry.span);
        return pools;
    };
    let all = Fields::new(table, &entry.key, entry.span.clone(), &[]).all();
    for pool in all {
        let name = ctx.section_name(&pool, "upstream", "app");
        if let Some(upstream) = one(ctx, &pool, app_names) {
            pools.insert(name, upstream);
        }
    }
    pools
}

fn one(ctx: &mut Ctx, entry: &Entry, app_names: &[String]) -> Option<Upstream> {
    let fields = ctx.table(entry, UPSTREAM_KEYS)?;
    let mut upstream = Upstream {
        balance: Balance::RoundRobin,
        servers: Vec::new(),
        connect_timeout: defaults::CONNECT_TIMEOUT,
        response_timeout: defaults::RESPONSE_TIMEOUT,
        retries: defaults::RETRIES,
        retry_backoff: defaults::RETRY_BACKOFF,
        retry_backoff_max: defaults::RETRY_BACKOFF_MAX,
        retry_budget: defaults::RETRY_BUDGET,
        health: None,
        passive: Some(upstream_health::default_passive()),
        breaker: None,
        app: None,
    };
    if let Some(e) = fields.get("app") {
        if let Some(name) = ctx.string(&e) {
            if app_names.contains(&name) {
                upstream.app = Some(name);
            } else {
                let fix = if app_names.is_empty() {
                    format!("no apps are defined; add [app.{name}]")
                } else {
                    format!("defined apps: {}", app_names.join(", "))
                };
                ctx.error(&e.span, &e.key, format!("no app named {name:?}"), Some(fix));
            }
        }
    }
    if let Some(e) = fields.get("balance") {
        if let Some(balance) = balance(ctx, &e) {
            upstream.balance = balance;
        }
    }
    match fields.get("servers") {
        Some(e) if fields.get("app").is_some() => {
            let fix = "remove servers: the pool is the app's live instances".to_string();
            ctx.error(
                &e.key_span,
                &e.key,
                "cannot be combined with app".into(),
                Some(fix),
            );
        }
        Some(e) => upstream.servers = servers(ctx, &e),
        None if fields.get("app").is_some() => {}
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
    retries(ctx, &fields, &mut upstream);
    upstream.health = fields
        .get("health")
        .and_then(|e| upstream_health::health(ctx, &e));
    if let Some(e) = fields.get("passive") {
        upstream.passive = upstream_health::passive(ctx, &e);
    }
    upstream.breaker = fields
        .get("breaker")
        .and_then(|e| upstream_health::breaker(ctx, &e));
    fields.finish(ctx);
    Some(upstream)
}

fn balance(ctx: &mut Ctx, entry: &Entry) -> Option<Balance> {
    let text = ctx.string(entry)?;
    if let Some((_, balance)) = BALANCE.iter().find(|(name, _)| *name == text) {
        return Some(*balance);
    }
    let names: Vec<&str> = BALANCE.iter().map(|(name, _)| *name).collect();
    let choices = names.join(", ");
    let fix = match closest(&text, &names) {
        Some(near) => format!("did you mean \"{near}\"? write one of: {choices}"),
        None => format!("write one of: {choices}"),
    };
    let message = format!("unknown balance {text:?}");
    ctx.error(&entry.span, &entry.key, message, Some(fix));
    None
}

/// `retries`, `retry_backoff`, `retry_backoff_max` and `retry_budget`.
fn retries(ctx: &mut Ctx, fields: &Fields, upstream: &mut Upstream) {
    if let Some(e) = fields.get("retries") {
        let fix = "use a number of retries between 0 and 10";
        if let Some(n) = whole(ctx, &e, RETRIES, fix) {
            upstream.retries = n;
        }
    }
    let backoff = fields.get("retry_backoff");
    if let Some(d) = backoff.as_ref().and_then(|e| ctx.duration(e)) {
        upstream.retry_backoff = d;
    }
    let backoff_max = fields.get("retry_backoff_max");
    if let Some(d) = backoff_max.as_ref().and_then(|e| ctx.duration(e)) {
        upstream.retry_backoff_max = d;
    }
    if upstream.retry_backoff_max < upstream.retry_backoff {
        let (min, max) = (upstream.retry_backoff, upstream.retry_backoff_max);
        // Point at what the user wrote: the cap if written, else the backoff.
        let at = backoff_max.as_ref().or(backoff.as_ref());
        if let Some(e) = at {
            let message = format!(
                "retry_backoff_max ({}) is shorter than retry_backoff ({})",
                show(max),
                show(min)
            );
            let fix = format!(
                "set retry_backoff_max to at least \"{}\", or lower retry_backoff",
                show(min)
            );
            ctx.error(&e.span, &e.key, message, Some(fix));
        }
    }
    if let Some(e) = fields.get("retry_budget") {
        if let Some(budget) = fraction(ctx, &e) {
            upstream.retry_budget = budget;
        }
    }
}

/// A whole number within `range`; `None` after reporting, with `fix`.
pub(super) fn whole(
    ctx: &mut Ctx,
    entry: &Entry,
    range: RangeInclusive<i64>,
    fix: &str,
) -> Option<u32> {
    let n = ctx.integer(entry)?;
    match u32::try_from(n) {
        Ok(value) if range.contains(&n) => Some(value),
        _ => {
            let (start, end) = (*range.start(), *range.end());
            let message = if end >= i64::from(u32::MAX) && n < start {
                format!("{n} is too small: the least is {start}")
            } else if end >= i64::from(u32::MAX) {
                format!("{n} is too large")
            } else {
                format!("{n} is out of range {start}..={end}")
            };
            ctx.error(&entry.span, &entry.key, message, Some(fix.into()));
            None
        }
    }
}

/// A number from 0.0 to 1.0; the integers 0 and 1 are accepted too.
fn fraction(ctx: &mut Ctx, entry: &Entry) -> Option<f64> {
    let fix = "write a fraction from 0.0 to 1.0, e.g. 0.2 for 20%";
    let value = match (entry.item.as_float(), entry.item.as_integer()) {
        (Some(f), _) => f,
        (None, Some(n)) => n as f64,
        (None, None) => {
            ctx.expected("a number", &entry.key, entry.item, &entry.span);
            return None;
        }
    };
    if (0.0..=1.0).contains(&value) {
        Some(value)
    } else {
        let message = format!("{value} is out of range 0.0..=1.0");
        ctx.error(&entry.span, &entry.key, message, Some(fix.into()));
        None
    }
}

/// A duration longer than zero.
pub(super) fn nonzero_duration(ctx: &mut Ctx, entry: &Entry) -> Option<Duration> {
    let d = ctx.duration(entry)?;
    if d.is_zero() {
        let fix = "write a duration longer than zero, e.g. \"1s\"";
        ctx.error(
            &entry.span,
            &entry.key,
            "must be longer than zero".into(),
            Some(fix.into()),
        );
        return None;
    }
    Some(d)
}

/// A duration as the file writes it (`"2s"`, `"100ms"`).
pub(super) fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
