//! Typed reads of one value: a string (interpolated), a boolean, a whole
//! number, a duration, a size, an array. A value of the wrong type or
//! form is reported at its span and read as `None`.

use std::time::Duration;

use toml_edit::Value;

use super::super::units;
use super::{Ctx, Entry, Span};

impl<'a> Ctx<'a> {
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
}
