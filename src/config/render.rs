//! The effective configuration as TOML, with secrets redacted.
//!
//! In: a loaded `Config` (defaults filled in, `${...}` expanded).
//! Out: TOML text in the same shape as `wharf.toml`, for `wharf check
//! --print`; every string that contains a value read from `${file:...}` is
//! replaced by `"<redacted>"`, so the output is safe to paste in a bug report.
//! The output must load back as the same configuration, so a few values
//! are written as the file writes them rather than as serde shapes them:
//! a pool with passive ejection off renders `max_fails = 0` (an absent
//! `[upstream.NAME.passive]` means "on with defaults"); an app-backed pool
//! has no `servers` (the two cannot be combined); an app's log file is a
//! plain path; and every `$` in a value is written `$$`, because the
//! printed text is interpolated again when it is loaded.
//! Also holds the serde helpers that make the schema render as the file
//! is written (host patterns and access logs as plain strings).

use std::fmt;
use std::net::SocketAddr;

use serde::Serializer;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::schema::{AccessLog, AppLog, Config, HostPattern};

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
        match text.parse::<DocumentMut>() {
            Ok(mut document) => {
                mark_passive_off(&mut document, &passive_off);
                self.write_as_the_file_does(&mut document);
                rewrite_strings(document.as_item_mut(), &secrets);
                document.to_string()
            }
            Err(e) => format!("# cannot render the configuration: {e}\n"),
        }
    }

    /// Values whose serde shape the loader does not read back: an
    /// app-backed pool's empty `servers`, and `log = { file = "..." }`.
    fn write_as_the_file_does(&self, document: &mut DocumentMut) {
        let app_backed = self.upstreams.iter().filter(|(_, u)| u.app.is_some());
        for (name, _) in app_backed {
            if let Some(pool) = table_mut(document, "upstream", name) {
                pool.remove("servers");
            }
        }
        for (name, app) in &self.apps {
            if let AppLog::File(path) = &app.log {
                if let Some(table) = table_mut(document, "app", name) {
                    table.insert("log", toml_edit::value(path.display().to_string()));
                }
            }
        }
    }
}

/// `[section.name]` in the rendered document.
fn table_mut<'a>(
    document: &'a mut DocumentMut,
    section: &str,
    name: &str,
) -> Option<&'a mut dyn toml_edit::TableLike> {
    document
        .get_mut(section)
        .and_then(Item::as_table_like_mut)?
        .get_mut(name)
        .and_then(Item::as_table_like_mut)
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

/// Redacts secrets and escapes `$` in every string value (keys are never
/// interpolated, so they are left alone).
fn rewrite_strings(item: &mut Item, secrets: &[&str]) {
    match item {
        Item::Value(value) => rewrite_value(value, secrets),
        Item::Table(table) => table
            .iter_mut()
            .for_each(|(_, item)| rewrite_strings(item, secrets)),
        Item::ArrayOfTables(tables) => tables.iter_mut().for_each(|table| {
            table
                .iter_mut()
                .for_each(|(_, item)| rewrite_strings(item, secrets))
        }),
        Item::None => {}
    }
}

fn rewrite_value(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(s) => {
            let text = if secrets.iter().any(|secret| s.value().contains(secret)) {
                REDACTED.to_string()
            } else if s.value().contains('$') {
                s.value().replace('$', "$$")
            } else {
                return;
            };
            let decor = s.decor().clone();
            *value = Value::from(text);
            *value.decor_mut() = decor;
        }
        Value::Array(array) => array.iter_mut().for_each(|v| rewrite_value(v, secrets)),
        Value::InlineTable(table) => table
            .iter_mut()
            .for_each(|(_, v)| rewrite_value(v, secrets)),
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
