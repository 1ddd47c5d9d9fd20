//! Tables: a `[x]` section, an inline table or a list of them, read as
//! `Fields` whose known keys are taken one by one and whose other keys are
//! reported as unknown with the nearest valid one.

use toml_edit::TableLike;

use super::super::error::closest;
use super::{describe, Ctx, Entry, Span};

/// A table being read: known keys are taken, the rest are unknown.
pub(crate) struct Fields<'a> {
    pub path: String,
    pub span: Span,
    table: &'a dyn TableLike,
    known: &'static [&'static str],
}

impl<'a> Ctx<'a> {
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
