//! Configuration errors: what went wrong, where, and how to fix it.
//!
//! In: problems found while reading `wharf.toml` (each with a byte offset
//! into the file, turned into a 1-based line and column here).
//! Out: `ConfigErrors`, which prints one problem per line in the form
//! `file:line:col: key: message` with a `fix:` line under it, and a count.
//! Loading never stops at the first problem, so a user fixes a file in one
//! pass instead of one error per run.

use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given to `load`/`parse`.
    pub file: String,
    /// 1-based line; 0 when the problem has no position (e.g. unreadable file).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Dotted path of the key, e.g. `site[0].route[2].upstream`; empty for
    /// file-level problems.
    pub key: String,
    pub message: String,
    /// What to write instead, when there is a useful suggestion.
    pub fix: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The file name, for the count line.
    pub file: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// A single problem that is not tied to a position, e.g. an unreadable file.
    pub fn single(file: &str, message: impl Into<String>, fix: Option<String>) -> Self {
        ConfigErrors {
            file: file.to_string(),
            errors: vec![ConfigError {
                file: file.to_string(),
                line: 0,
                column: 0,
                key: String::new(),
                message: message.into(),
                fix,
            }],
        }
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            writeln!(f, "{error}")?;
        }
        let n = self.errors.len();
        let noun = if n == 1 { "error" } else { "errors" };
        write!(f, "{n} {noun} in {}", self.file)
    }
}

/// Turns byte offsets into 1-based line and column numbers.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// Line and column (in characters) of `offset` within `text`.
    pub(crate) fn locate(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, column)
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let index = LineIndex::new(text);
        assert_eq!(index.locate(text, 0), (1, 1));
        assert_eq!(index.locate(text, 6), (2, 1));
        let quote = text.find('"').unwrap_or_default();
        assert_eq!(index.locate(text, quote), (2, 6));
    }

    #[test]
    fn display_prints_position_key_message_fix_and_count() {
        let errors = ConfigErrors {
            file: "wharf.toml".into(),
            errors: vec![ConfigError {
                file: "wharf.toml".into(),
                line: 12,
                column: 9,
                key: "server.listen[0]".into(),
                message: "\"0.0.0.0:80x\" is not an address: invalid port".into(),
                fix: Some("write host:port, e.g. \"0.0.0.0:8080\"".into()),
            }],
        };
        assert_eq!(
            errors.to_string(),
            "wharf.toml:12:9: server.listen[0]: \"0.0.0.0:80x\" is not an address: invalid port\n    \
             fix: write host:port, e.g. \"0.0.0.0:8080\"\n1 error in wharf.toml"
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["listen", "admin", "trusted_proxies"];
        assert_eq!(closest("lisen", &keys), Some("listen"));
        assert_eq!(closest("trusted_proxy", &keys), Some("trusted_proxies"));
        assert_eq!(closest("zzz", &keys), None);
    }
}
