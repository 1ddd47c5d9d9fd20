//! Configuration: the schema, loading with `${...}` interpolation, and
//! validation that reports every problem at once with file:line:column.
//!
//! In: a path to `wharf.toml` (or its text, for tests and embedded configs).
//! Out: a checked `Config`, or `ConfigErrors` listing every problem with
//! its position, key and a fix. Nothing here touches the network except
//! resolving upstream host names once; nothing here is used per request.

mod app;
mod cors;
mod error;
mod interpolate;
mod render;
mod route;
pub mod schema;
mod server;
mod site;
mod tls;
pub mod units;
mod upstream;
mod upstream_health;
mod walk;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use schema::*;
pub use server::admin_warning;

use walk::{Ctx, Fields};

const TOP_KEYS: &[&str] = &["server", "log", "site", "upstream", "app", "tls"];

/// The machine a config is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// The one wharf runs on now: every check, including that the state
    /// directory (`tls.storage`) can be written, which creates it.
    This,
    /// An image being exported (`wharf export dockerfile|kubernetes`):
    /// the image makes its state directories itself and its build runs
    /// `wharf check` there, so this machine's are neither checked nor made.
    Image,
}

/// Reads, interpolates and checks the configuration file at `path`.
/// Relative paths inside it are resolved against the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_for(path, Machine::This)
}

/// [`load`], checking the config for `machine`.
pub fn load_for(path: &Path, machine: Machine) -> Result<Config, ConfigErrors> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigErrors::single(
            &source,
            format!("cannot read the configuration file: {e}"),
            Some("check the path, or pass another one with --config".to_string()),
        )
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| not_utf8(&source, e.as_bytes(), e.utf8_error().valid_up_to()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let base_dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let env = |name: &str| std::env::var(name).ok();
    parse_for(&text, &source, &base_dir, &env, machine)
}

/// The error for a file that is not UTF-8 (TOML must be), at the first
/// byte that is not: an editor shows where to look, not just that it is.
fn not_utf8(source: &str, bytes: &[u8], valid_up_to: usize) -> ConfigErrors {
    let valid = bytes
        .get(..valid_up_to)
        .and_then(|prefix| std::str::from_utf8(prefix).ok())
        .unwrap_or_default();
    let (line, column) = error::LineIndex::new(valid).locate(valid, valid.len());
    let byte = bytes.get(valid.len()).copied().unwrap_or_default();
    ConfigErrors {
        file: source.to_string(),
        errors: vec![ConfigError {
            file: source.to_string(),
            line,
            column,
            key: String::new(),
            message: format!("not valid UTF-8: byte 0x{byte:02x} is not part of a character"),
            fix: Some("save the file as UTF-8 (TOML files are UTF-8)".to_string()),
        }],
    }
}

/// Parses configuration text. `source` names the file in messages;
/// `base_dir` is where relative paths start; `env` reads variables for
/// `${NAME}` (a closure, so tests need not touch the process environment).
pub fn parse(
    text: &str,
    source: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    parse_for(text, source, base_dir, env, Machine::This)
}

/// [`parse`], checking the config for `machine`.
pub fn parse_for(
    text: &str,
    source: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    machine: Machine,
) -> Result<Config, ConfigErrors> {
    let document = match toml_edit::ImDocument::parse(text) {
        Ok(document) => document,
        Err(e) => {
            let mut ctx = Ctx::new(text, source, base_dir, env, machine);
            let message = format!("not valid TOML: {}", e.message().trim());
            ctx.error(&e.span(), "", message, None);
            return Err(ConfigErrors {
                file: source.to_string(),
                errors: ctx.errors,
            });
        }
    };
    let mut ctx = Ctx::new(text, source, base_dir, env, machine);
    let root = Fields::new(document.as_table(), "", Some(0..0), TOP_KEYS);
    let server = server::server(&mut ctx, root.get("server"));
    let log = server::log(&mut ctx, root.get("log"));
    let app_entry = root.get("app");
    let app_names = app::names(&app_entry);
    let apps = app::apps(&mut ctx, app_entry);
    let upstream_entry = root.get("upstream");
    let names = upstream::names(&upstream_entry);
    let upstreams = upstream::upstreams(&mut ctx, upstream_entry, &app_names);
    let sites = site::sites(&mut ctx, root.get("site"), &names);
    // Where `server.https` is written: HTTPS without [tls] is reported there.
    let https_span = root
        .get("server")
        .and_then(|e| e.item.get("https"))
        .and_then(|item| item.span());
    let tls = tls::tls(&mut ctx, root.get("tls"), &server, https_span);
    root.finish(&mut ctx);

    if !ctx.errors.is_empty() {
        let mut errors = ctx.errors;
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(ConfigErrors {
            file: source.to_string(),
            errors,
        });
    }
    Ok(Config {
        source: source.to_string(),
        secrets: ctx.secrets,
        server,
        log,
        sites,
        upstreams,
        tls,
        apps,
    })
}
