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
//!
//! The typed value reads (strings, numbers, durations, sizes, arrays) are
//! in `walk/values.rs`; tables and `Fields` in `walk/fields.rs`.

use std::ops::Range;
use std::path::Path;

use toml_edit::Item;

use super::error::{ConfigError, LineIndex};
use super::interpolate;

mod fields;
mod values;

pub(crate) use fields::Fields;

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
    /// The machine the config is checked for; state directories are
    /// checked only when it is this one.
    pub machine: super::Machine,
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
impl<'a> Ctx<'a> {
    pub(crate) fn new(
        text: &'a str,
        file: &'a str,
        base_dir: &'a Path,
        env: &'a dyn Fn(&str) -> Option<String>,
        machine: super::Machine,
    ) -> Self {
        Ctx {
            text,
            file,
            base_dir,
            env,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            secrets: Vec::new(),
            machine,
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
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::Value(value) => value.type_name(),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::None => "nothing",
    }
}
