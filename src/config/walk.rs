//! The document walker: typed reads of a `toml_edit` tree that collect
//! every problem instead of stopping at the first.
//!
//! In: the parsed document (every key and value keeps its byte span), the
//! environment, and the config file's directory.
//! Out: plain values for the section readers, and `ConfigError`s with
//! file:line:column, the dotted key and a fix. A reader takes the keys it
//! knows from a `Fields`, then `finish` reports everything left as unknown.
//! Every string value passes through `${...}` interpolation here, before
//! it is parsed as an address, size, duration or anything else.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use super::error::{closest, ConfigError, LineIndex};
use super::{interpolate, units};

pub(crate) type Span = Option<Range<usize>>;

/// Shared state while reading one file.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    pub file: &'a str,
    pub base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    lines: LineIndex,
    pub errors: Vec<ConfigError>,
    pub secrets: Vec<String>,
}

/// One key's value, with its dotted path and where it is written.
#[derive(Clone)]
pub(crate) struct Entry<'a> {
    pub key: String,
    pub item: &'a Item,
    /// The value's span (or the key's, when the value has none).
    pub span: Span,
    /// The key's own span, for "this key should not be here" problems.
    pub key_span: Span,
}

/// A table being read: known keys are taken, the rest are unknown.
pub(crate) struct Fields<'a> {
    pub path: String,
    pub span: Span,
    table: &'a dyn TableLike,
    known: &'static [&'static str],
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        text: &'a str,
        file: &'a str,
        base_dir: &'a Path,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Ctx {
            text,
            file,
            base_dir,
            env,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// Records a problem at `span` (or at no position when there is none).
    pub(crate) fn error(&mut self, span: &Span, key: &str, message: String, fix: Option<String>) {
        let (line, column) = match span {
            Some(range) => self.lines.locate(self.text, range.start),
            None => (0, 0),
        };
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message,
            fix,
        });
    }

    /// Records a "wrong type" problem.
    pub(crate) fn expected(&mut self, what: &str, entry_key: &str, item: &Item, span: &Span) {
        let found = describe(item);
        self.error(
            span,
            entry_key,
            format!("expected {what}, found {found}"),
            None,
        );
    }

    /// Expands `${...}` in `raw`, written at `span`; `None` after reporting.
    pub(crate) fn expand(&mut self, key: &str, raw: &str, span: &Span) -> Option<String> {
        match interpolate::expand(raw, self.base_dir, self.env) {
            Ok(expanded) => {
                self.secrets.extend(expanded.secrets);
                Some(expanded.value)
            }
            Err(problems) => {
                // Point inside the string when it is written plainly in the file.
                let inner = span.as_ref().and_then(|r| {
                    let written = self.text.get(r.clone())?;
                    let plain = (written.starts_with('"') || written.starts_with('\''))
                        && written.get(1..written.len().saturating_sub(1)) == Some(raw);
                    plain.then_some(r.start + 1)
                });
                for problem in problems {
                    let at = inner.map(|s| s + problem.offset..s + problem.offset + 1);
                    let at = at.or_else(|| span.clone());
                    self.error(&at, key, problem.message, problem.fix);
                }
                None
            }
        }
    }

    /// The NAME of a `[section.NAME]` entry, checked to be letters,
    /// digits, `_` and `-` (it becomes a label and a reference target).
    pub(crate) fn section_name(&mut self, entry: &Entry, section: &str, example: &str) -> String {
        let name = entry
            .key
            .strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&entry.key)
            .to_string();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.error(
                &entry.key_span,
                &entry.key,
                format!("{name:?} is not a valid {section} name"),
                Some(format!(
                    "use letters, digits, `_` and `-` only, e.g. [{section}.{example}]"
                )),
            );
        }
        name
    }

    /// A string value, interpolated.
    pub(crate) fn value_string(&mut self, key: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => self.expand(key, s.value(), &value.span()),
            _ => {
                let span = value.span();
                self.error(
                    &span,
                    key,
                    format!("expected a string, found {}", value.type_name()),
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn string(&mut self, entry: &Entry) -> Option<String> {
        match entry.item.as_value() {
            Some(value) => self.value_string(&entry.key, value),
            None => {
                self.expected("a string", &entry.key, entry.item, &entry.span);
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, entry: &Entry) -> Option<bool> {
        let value = entry.item.as_bool();
        if value.is_none() {
            self.expected("true or false", &entry.key, entry.item, &entry.span);
        }
        value
    }

    /// A whole number, written as one or as a string that interpolates to
    /// one (`port = "${APP_PORT:-9001}"`).
    pub(crate) fn integer(&mut self, entry: &Entry) -> Option<i64> {
        if let Some(value) = entry.item.as_integer() {
            return Some(value);
        }
        if entry.item.as_str().is_some() {
            let text = self.string(entry)?;
            let parsed = text.trim().parse().ok();
            if parsed.is_none() {
                let message = format!("{text:?} is not a whole number");
                self.error(&entry.span, &entry.key, message, None);
            }
            return parsed;
        }
        self.expected("a whole number", &entry.key, entry.item, &entry.span);
        None
    }

    pub(crate) fn duration(&mut self, entry: &Entry) -> Option<Duration> {
        let text = self.string(entry)?;
        match units::parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(e) => {
                self.error(
                    &entry.span,
                    &entry.key,
                    format!("{text:?} is not a duration: {e}"),
                    Some("write a number and a unit, e.g. \"30s\", \"100ms\", \"1h\"".into()),
                );
                None
            }
        }
    }

    /// A size: a whole number of bytes, or a string like `"64KiB"`.
    pub(crate) fn size(&mut self, entry: &Entry) -> Option<u64> {
        let fix = Some("write bytes or a unit, e.g. 1024, \"64KiB\", \"10MiB\", \"10MB\"".into());
        if let Some(n) = entry.item.as_integer() {
            return match u64::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    let message = format!("{n} is not a size: it is negative");
                    self.error(&entry.span, &entry.key, message, fix);
                    None
                }
            };
        }
        let text = self.string(entry)?;
        match units::parse_size(&text) {
            Ok(size) => Some(size),
            Err(e) => {
                let message = format!("{text:?} is not a size: {e}");
                self.error(&entry.span, &entry.key, message, fix);
                None
            }
        }
    }

    /// The elements of an array, each with its indexed key (`key[0]`).
    pub(crate) fn array<'v>(&mut self, entry: &Entry<'v>) -> Option<Vec<(String, &'v Value)>> {
        match entry.item.as_array() {
            Some(array) => Some(
                array
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{}[{i}]", entry.key), v))
                    .collect(),
            ),
            None => {
                self.expected("an array", &entry.key, entry.item, &entry.span);
                None
            }
        }
    }

    /// An array of strings, interpolated; bad elements are reported and skipped.
    pub(crate) fn strings(&mut self, entry: &Entry) -> Option<Vec<(String, String, Span)>> {
        let elements = self.array(entry)?;
        Some(
            elements
                .into_iter()
                .filter_map(|(key, value)| {
                    let text = self.value_string(&key, value)?;
                    Some((key, text, value.span()))
                })
                .collect(),
        )
    }

    /// A table (`[x]` or `x = { ... }`) to read with `Fields`.
    pub(crate) fn table<'v>(
        &mut self,
        entry: &Entry<'v>,
        known: &'static [&'static str],
    ) -> Option<Fields<'v>> {
        match entry.item.as_table_like() {
            Some(table) => Some(Fields::new(table, &entry.key, entry.span.clone(), known)),
            None => {
                self.expected("a table", &entry.key, entry.item, &entry.span);
                None
            }
        }
    }

    /// A list of tables: `[[x]]` sections or an array of inline tables.
    pub(crate) fn tables<'v>(
        &mut self,
        entry: &Entry<'v>,
        known: &'static [&'static str],
    ) -> Vec<Fields<'v>> {
        if let Some(list) = entry.item.as_array_of_tables() {
            return list
                .iter()
                .enumerate()
                .map(|(i, t)| Fields::new(t, &format!("{}[{i}]", entry.key), t.span(), known))
                .collect();
        }
        let Some(array) = entry.item.as_array() else {
            let fix = format!("write [[{}]] sections", entry.key);
            let found = describe(entry.item);
            let message = format!("expected a list of tables, found {found}");
            self.error(&entry.span, &entry.key, message, Some(fix));
            return Vec::new();
        };
        let mut tables = Vec::new();
        for (i, value) in array.iter().enumerate() {
            let key = format!("{}[{i}]", entry.key);
            match value.as_inline_table() {
                Some(t) => tables.push(Fields::new(t, &key, value.span(), known)),
                None => {
                    let message = format!("expected a table, found {}", value.type_name());
                    self.error(&value.span(), &key, message, None);
                }
            }
        }
        tables
    }
}

impl<'a> Fields<'a> {
    pub(crate) fn new(
        table: &'a dyn TableLike,
        path: &str,
        span: Span,
        known: &'static [&'static str],
    ) -> Self {
        Fields {
            path: path.to_string(),
            span,
            table,
            known,
        }
    }

    /// The dotted key of `name` in this table.
    pub(crate) fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The entry for a known key, if it is written.
    pub(crate) fn get(&self, name: &str) -> Option<Entry<'a>> {
        debug_assert!(self.known.contains(&name), "{name} is not a known key");
        let (key, item) = self.table.get_key_value(name)?;
        if item.is_none() {
            return None;
        }
        let key_span = key.span().or_else(|| self.span.clone());
        Some(Entry {
            key: self.key(name),
            item,
            span: item.span().or_else(|| key_span.clone()),
            key_span,
        })
    }

    /// Every key/value pair, known or not, in file order.
    pub(crate) fn all(&self) -> Vec<Entry<'a>> {
        self.table
            .iter()
            .filter_map(|(name, _)| {
                let (key, item) = self.table.get_key_value(name)?;
                let key_span = key.span().or_else(|| self.span.clone());
                Some(Entry {
                    key: self.key(name),
                    item,
                    span: item.span().or_else(|| key_span.clone()),
                    key_span,
                })
            })
            .collect()
    }

    /// Reports every key that is not one of the known keys.
    pub(crate) fn finish(self, ctx: &mut Ctx) {
        for (name, _) in self.table.iter() {
            if self.known.contains(&name) {
                continue;
            }
            let span = self
                .table
                .get_key_value(name)
                .and_then(|(key, _)| key.span())
                .or_else(|| self.span.clone());
            let valid = self.known.join(", ");
            let fix = match closest(name, self.known) {
                Some(near) => format!("did you mean `{near}`? valid keys here: {valid}"),
                None => format!("valid keys here: {valid}"),
            };
            let is_section = self.path.is_empty()
                && self
                    .table
                    .get(name)
                    .is_some_and(|i| i.is_table() || i.is_array_of_tables());
            let message = if is_section {
                format!("unknown section `[{name}]`")
            } else {
                format!("unknown key `{name}`")
            };
            ctx.error(&span, &self.key(name), message, Some(fix));
        }
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::Value(value) => value.type_name(),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::None => "nothing",
    }
}
