//! `${...}` interpolation in string values.
//!
//! In: one string value as written in the file, the config file's
//! directory, and a way to read environment variables.
//! Out: the expanded string plus any values read from `${file:...}` (they
//! are secrets, redacted when the config is printed), or every problem in
//! the string with its byte offset inside the value.
//!
//! Forms: `${NAME}`, `${NAME:-default}` (default when unset or empty),
//! `${file:/path}` (file contents, trailing newlines trimmed), and `$$` for
//! a literal `$`. A `$` followed by anything else is kept as is.

use std::path::Path;

/// A successfully expanded value.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Expanded {
    pub value: String,
    /// Text that came from `${file:...}`.
    pub secrets: Vec<String>,
}

/// A problem at `offset` bytes into the value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub offset: usize,
    pub message: String,
    pub fix: Option<String>,
}

/// Expands every `${...}` in `input`.
pub(crate) fn expand(
    input: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Expanded, Vec<Problem>> {
    let mut out = Expanded::default();
    let mut problems = Vec::new();
    let mut rest = input;
    let mut offset = 0;
    while let Some(dollar) = rest.find('$') {
        out.value.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let start = offset + dollar;
        if let Some(tail) = after.strip_prefix('$') {
            out.value.push('$');
            offset = start + 2;
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                problems.push(Problem {
                    offset: start,
                    message: "`${` is never closed".to_string(),
                    fix: Some("close it with `}`, or write `$$` for a literal `$`".to_string()),
                });
                return Err(problems);
            };
            let reference = &body[..close];
            match resolve(reference, base_dir, env) {
                Ok((text, secret)) => {
                    if secret && !text.is_empty() {
                        out.secrets.push(text.clone());
                    }
                    out.value.push_str(&text);
                }
                Err((message, fix)) => problems.push(Problem {
                    offset: start,
                    message,
                    fix,
                }),
            }
            offset = start + 2 + close + 1;
            rest = &body[close + 1..];
        } else {
            out.value.push('$');
            offset = start + 1;
            rest = after;
        }
    }
    out.value.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Resolves the text between `${` and `}`; the flag says whether it is a secret.
fn resolve(
    reference: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), (String, Option<String>)> {
    if let Some(path) = reference.strip_prefix("file:") {
        if path.is_empty() {
            return Err((
                "`${file:}` names no file".to_string(),
                Some("write ${file:/path/to/secret}".to_string()),
            ));
        }
        let full = base_dir.join(path);
        return match std::fs::read_to_string(&full) {
            Ok(text) => Ok((text.trim_end_matches(['\n', '\r']).to_string(), true)),
            Err(e) => Err((
                format!("cannot read `{}`: {e}", full.display()),
                Some("create the file or fix the path (relative paths start from the config file's directory)".to_string()),
            )),
        };
    }
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    if !is_variable_name(name) {
        return Err((
            format!("`${{{reference}}}` is not a valid reference"),
            Some(
                "write ${NAME}, ${NAME:-default} or ${file:/path}; use $$ for a literal $"
                    .to_string(),
            ),
        ));
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok((default.to_string(), false)),
        (Some(value), _) => Ok((value, false)),
        (None, Some(default)) => Ok((default.to_string(), false)),
        (None, None) => Err((
            format!("environment variable {name} is not set"),
            Some(format!("set {name} or write ${{{name}:-default}}")),
        )),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("9000".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn value(input: &str) -> String {
        expand(input, Path::new("/"), &env).map_or_else(|e| format!("{e:?}"), |e| e.value)
    }

    #[test]
    fn environment_forms() {
        assert_eq!(value("0.0.0.0:${PORT}"), "0.0.0.0:9000");
        assert_eq!(value("${PORT:-80}"), "9000");
        assert_eq!(value("${UNSET:-80}"), "80");
        assert_eq!(value("${EMPTY:-80}"), "80");
        assert_eq!(value("${EMPTY}"), "");
        assert_eq!(value("${UNSET:-}"), "");
        assert_eq!(value("a${PORT}b${PORT}c"), "a9000b9000c");
    }

    #[test]
    fn dollars() {
        assert_eq!(value("$$"), "$");
        assert_eq!(value("cost: $$5"), "cost: $5");
        assert_eq!(value("$$${PORT}"), "$9000");
        assert_eq!(value("a$b$"), "a$b$");
        assert_eq!(value("$${PORT}"), "${PORT}");
    }

    #[test]
    fn unset_variable_names_the_fix_and_offset() {
        let problems = expand("ab${NOPE}", Path::new("/"), &env)
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].offset, 2);
        assert_eq!(problems[0].message, "environment variable NOPE is not set");
        assert_eq!(
            problems[0].fix.as_deref(),
            Some("set NOPE or write ${NOPE:-default}")
        );
    }

    #[test]
    fn every_problem_in_a_value_is_reported() {
        let problems = expand("${A}-${B}-${1x}-${C", Path::new("/"), &env)
            .err()
            .unwrap_or_default();
        let offsets: Vec<usize> = problems.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, vec![0, 5, 10, 16]);
    }

    #[test]
    fn files_are_read_trimmed_and_marked_secret() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("token"), "s3cret\n\n").expect("write");
        let out = expand("Bearer ${file:token}", dir.path(), &env).expect("expands");
        assert_eq!(out.value, "Bearer s3cret");
        assert_eq!(out.secrets, vec!["s3cret".to_string()]);

        let absolute = format!("${{file:{}}}", dir.path().join("token").display());
        let out = expand(&absolute, Path::new("/elsewhere"), &env).expect("expands");
        assert_eq!(out.value, "s3cret");

        let problems = expand("${file:missing}", dir.path(), &env)
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("cannot read"));
    }
}
