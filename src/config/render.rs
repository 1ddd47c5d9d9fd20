//! The effective configuration as TOML, with secrets redacted.
//!
//! In: a loaded `Config` (defaults filled in, `${...}` expanded).
//! Out: TOML text in the same shape as `wharf.toml`, for `wharf check
//! --print`; every string that contains a value read from `${file:...}` is
//! replaced by `"<redacted>"`, so the output is safe to paste in a bug report.
//! A pool with passive ejection off renders `max_fails = 0`, because an
//! absent `[upstream.NAME.passive]` means "on with defaults".
//! Also holds the serde helpers that make the schema render as the file
//! is written (host patterns and access logs as plain strings).

use std::fmt;
use std::net::SocketAddr;

use serde::Serializer;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::schema::{AccessLog, Config, HostPattern};

const REDACTED: &str = "<redacted>";

impl Config {
    /// The effective configuration as TOML, secrets replaced by `"<redacted>"`.
    pub fn render_redacted(&self) -> String {
        let text = match toml::to_string(self) {
            Ok(text) => text,
            Err(e) => return format!("# cannot render the configuration: {e}\n"),
        };
        let secrets: Vec<&str> = self
            .secrets
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        let passive_off: Vec<&str> = self
            .upstreams
            .iter()
            .filter(|(_, upstream)| upstream.passive.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if secrets.is_empty() && passive_off.is_empty() {
            return text;
        }
        match text.parse::<DocumentMut>() {
            Ok(mut document) => {
                mark_passive_off(&mut document, &passive_off);
                redact_item(document.as_item_mut(), &secrets);
                document.to_string()
            }
            Err(e) => format!("# cannot render the configuration: {e}\n"),
        }
    }
}

/// Passive ejection is on when its table is absent, so a pool that turned
/// it off renders `[upstream.NAME.passive] max_fails = 0` to read back the same.
fn mark_passive_off(document: &mut DocumentMut, names: &[&str]) {
    let pools = document
        .get_mut("upstream")
        .and_then(Item::as_table_like_mut);
    let Some(pools) = pools else {
        return;
    };
    for name in names {
        let Some(pool) = pools.get_mut(name).and_then(Item::as_table_like_mut) else {
            continue;
        };
        let mut passive = Table::new();
        passive.insert("max_fails", toml_edit::value(0));
        pool.insert("passive", Item::Table(passive));
    }
}

fn redact_item(item: &mut Item, secrets: &[&str]) {
    match item {
        Item::Value(value) => redact_value(value, secrets),
        Item::Table(table) => table
            .iter_mut()
            .for_each(|(_, item)| redact_item(item, secrets)),
        Item::ArrayOfTables(tables) => tables.iter_mut().for_each(|table| {
            table
                .iter_mut()
                .for_each(|(_, item)| redact_item(item, secrets))
        }),
        Item::None => {}
    }
}

fn redact_value(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(s) if secrets.iter().any(|secret| s.value().contains(secret)) => {
            let decor = s.decor().clone();
            *value = Value::from(REDACTED);
            *value.decor_mut() = decor;
        }
        Value::Array(array) => array.iter_mut().for_each(|v| redact_value(v, secrets)),
        Value::InlineTable(table) => table.iter_mut().for_each(|(_, v)| redact_value(v, secrets)),
        _ => {}
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(host) => f.write_str(host),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl From<HostPattern> for String {
    fn from(pattern: HostPattern) -> String {
        pattern.to_string()
    }
}

impl fmt::Display for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLog::Stdout => f.write_str("stdout"),
            AccessLog::Stderr => f.write_str("stderr"),
            AccessLog::Off => f.write_str("off"),
            AccessLog::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl From<AccessLog> for String {
    fn from(access: AccessLog) -> String {
        access.to_string()
    }
}

/// `admin` renders as the address, or `"off"`.
pub(super) fn serialize_admin<S: Serializer>(
    admin: &Option<SocketAddr>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match admin {
        Some(addr) => serializer.collect_str(addr),
        None => serializer.serialize_str("off"),
    }
}
