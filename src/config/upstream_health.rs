//! Reader for how a pool decides a server is down: `[upstream.NAME.health]`
//! (active checks), `[upstream.NAME.passive]` (ejection from real traffic)
//! and `[upstream.NAME.breaker]` (circuit breaker).
//!
//! In: the three sub-tables of one pool, each optional.
//! Out: `Option<HealthCheck>`, `Option<Passive>`, `Option<Breaker>`. A
//! written table turns its feature on with defaults for missing keys;
//! passive ejection is on even when its table is absent, and
//! `max_fails = 0` turns it off. Every key is checked even when the
//! feature ends up off, so a typo never hides.

use std::ops::RangeInclusive;

use super::schema::{defaults, Breaker, HealthCheck, Passive, StatusRange};
use super::upstream::{nonzero_duration, show, whole};
use super::walk::{Ctx, Entry};

const HEALTH_KEYS: &[&str] = &["path", "interval", "timeout", "fails", "passes", "expect"];
const PASSIVE_KEYS: &[&str] = &["max_fails", "window", "eject_for", "max_ejected_percent"];
const BREAKER_KEYS: &[&str] = &["failures", "open_for"];
const U32_MAX: i64 = u32::MAX as i64;
const AT_LEAST_ONE: RangeInclusive<i64> = 1..=U32_MAX;
const STATUSES: RangeInclusive<u16> = 100..=599;
const EXPECT_FIX: &str =
    "write \"2xx\", a status such as \"204\", or a range such as \"200-399\" (statuses 100 to 599)";

/// Passive ejection as it is when `[upstream.NAME.passive]` is absent.
pub(super) fn default_passive() -> Passive {
    Passive {
        max_fails: defaults::PASSIVE_MAX_FAILS,
        window: defaults::PASSIVE_WINDOW,
        eject_for: defaults::PASSIVE_EJECT_FOR,
        max_ejected_percent: defaults::PASSIVE_MAX_EJECTED_PERCENT,
    }
}

pub(super) fn health(ctx: &mut Ctx, entry: &Entry) -> Option<HealthCheck> {
    let fields = ctx.table(entry, HEALTH_KEYS)?;
    let mut health = HealthCheck {
        path: defaults::HEALTH_PATH.to_string(),
        interval: defaults::HEALTH_INTERVAL,
        timeout: defaults::HEALTH_TIMEOUT,
        fails: defaults::HEALTH_FAILS,
        passes: defaults::HEALTH_PASSES,
        expect: parse_expect(defaults::HEALTH_EXPECT).unwrap_or(StatusRange {
            low: 200,
            high: 299,
        }),
    };
    if let Some(e) = fields.get("path") {
        if let Some(path) = ctx.string(&e) {
            if path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                health.path = path;
            } else {
                let message = format!("{path:?} is not a request path");
                let fix = "write a path that starts with `/` and has no spaces, e.g. \"/health\"";
                ctx.error(&e.span, &e.key, message, Some(fix.into()));
            }
        }
    }
    let interval = fields.get("interval");
    if let Some(d) = interval.as_ref().and_then(|e| nonzero_duration(ctx, e)) {
        health.interval = d;
    }
    let timeout = fields.get("timeout");
    if let Some(d) = timeout.as_ref().and_then(|e| nonzero_duration(ctx, e)) {
        health.timeout = d;
    }
    if health.timeout > health.interval {
        // Point at what the user wrote: the timeout if written, else the interval.
        if let Some(e) = timeout.as_ref().or(interval.as_ref()) {
            let (timeout, interval) = (show(health.timeout), show(health.interval));
            let message = format!("timeout ({timeout}) is longer than interval ({interval})");
            let fix = format!("set timeout to at most \"{interval}\", or check less often");
            ctx.error(&e.span, &e.key, message, Some(fix));
        }
    }
    if let Some(e) = fields.get("fails") {
        let fix = "use 1 or more: consecutive failed checks that take a server out";
        if let Some(n) = whole(ctx, &e, AT_LEAST_ONE, fix) {
            health.fails = n;
        }
    }
    if let Some(e) = fields.get("passes") {
        let fix = "use 1 or more: consecutive passed checks that bring a server back";
        if let Some(n) = whole(ctx, &e, AT_LEAST_ONE, fix) {
            health.passes = n;
        }
    }
    if let Some(e) = fields.get("expect") {
        if let Some(range) = expect(ctx, &e) {
            health.expect = range;
        }
    }
    fields.finish(ctx);
    Some(health)
}

/// `None` when `max_fails = 0` (passive ejection off).
pub(super) fn passive(ctx: &mut Ctx, entry: &Entry) -> Option<Passive> {
    let Some(fields) = ctx.table(entry, PASSIVE_KEYS) else {
        return Some(default_passive());
    };
    let mut passive = default_passive();
    if let Some(e) = fields.get("max_fails") {
        let fix = "use 1 or more failures, or 0 to turn passive ejection off";
        if let Some(n) = whole(ctx, &e, 0..=U32_MAX, fix) {
            passive.max_fails = n;
        }
    }
    if let Some(d) = fields.get("window").and_then(|e| nonzero_duration(ctx, &e)) {
        passive.window = d;
    }
    if let Some(d) = fields
        .get("eject_for")
        .and_then(|e| nonzero_duration(ctx, &e))
    {
        passive.eject_for = d;
    }
    if let Some(e) = fields.get("max_ejected_percent") {
        let fix = "use a percentage between 0 and 100";
        if let Some(n) = whole(ctx, &e, 0..=100, fix) {
            passive.max_ejected_percent = n;
        }
    }
    fields.finish(ctx);
    (passive.max_fails > 0).then_some(passive)
}

pub(super) fn breaker(ctx: &mut Ctx, entry: &Entry) -> Option<Breaker> {
    let fields = ctx.table(entry, BREAKER_KEYS)?;
    let mut breaker = Breaker {
        failures: defaults::BREAKER_FAILURES,
        open_for: defaults::BREAKER_OPEN_FOR,
    };
    if let Some(e) = fields.get("failures") {
        let fix = "use 1 or more consecutive failures; remove [breaker] to turn it off";
        if let Some(n) = whole(ctx, &e, AT_LEAST_ONE, fix) {
            breaker.failures = n;
        }
    }
    if let Some(d) = fields
        .get("open_for")
        .and_then(|e| nonzero_duration(ctx, &e))
    {
        breaker.open_for = d;
    }
    fields.finish(ctx);
    Some(breaker)
}

/// `expect`: a string (`"2xx"`, `"204"`, `"200-399"`) or a bare status (`204`).
fn expect(ctx: &mut Ctx, entry: &Entry) -> Option<StatusRange> {
    let text = match entry.item.as_integer() {
        Some(n) => n.to_string(),
        None => ctx.string(entry)?,
    };
    let parsed = parse_expect(&text);
    if parsed.is_none() {
        let message = format!("{text:?} is not a status or status range");
        ctx.error(&entry.span, &entry.key, message, Some(EXPECT_FIX.into()));
    }
    parsed
}

/// Parses `"2xx"` (200..=299), `"204"` or `"200-399"`, statuses 100..=599.
pub(crate) fn parse_expect(text: &str) -> Option<StatusRange> {
    let text = text.trim();
    let status = |s: &str| -> Option<u16> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| STATUSES.contains(n))
    };
    let range = if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
        let digit = match class.as_bytes() {
            [d @ b'1'..=b'5'] => u16::from(d - b'0'),
            _ => return None,
        };
        StatusRange {
            low: digit * 100,
            high: digit * 100 + 99,
        }
    } else if let Some((low, high)) = text.split_once('-') {
        StatusRange {
            low: status(low)?,
            high: status(high)?,
        }
    } else {
        let exact = status(text)?;
        StatusRange {
            low: exact,
            high: exact,
        }
    };
    (range.low <= range.high).then_some(range)
}
