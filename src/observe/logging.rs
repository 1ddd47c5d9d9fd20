//! wharf's own log (not the access log): `tracing` events to stderr as JSON
//! or human-readable lines, with a level that a reload can change.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::LogFormat;

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn filter(level: &str) -> EnvFilter {
    // RUST_LOG, when set, wins over the config so users can debug one module.
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(directives(level)))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The configured level for wharf, with rustls held to errors: it warns
/// about every client that sends an IP address as SNI (curl and wrk do),
/// which at `info` would be one line per connection.
fn directives(level: &str) -> String {
    format!("{level},rustls=error")
}

/// Installs the global subscriber. Calling it twice is harmless.
pub fn init(format: LogFormat, level: &str) {
    let (filter, handle) = reload::Layer::new(filter(level));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colours only for a terminal: not into journald or a
                    // file (`NO_COLOR` turns them off there too).
                    .with_ansi(colours(std::io::stderr().is_terminal())),
            )
            .try_init(),
    };
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
}

/// Whether the pretty format colours its lines: on a terminal, unless
/// `NO_COLOR` is set (<https://no-color.org>).
fn colours(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Applies a new level after a reload (the format needs a restart).
pub fn set_level(level: &str) {
    if let Some(handle) = LEVEL.get() {
        let _ = handle.reload(filter(level));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_warnings_are_held_back_at_every_level() {
        for level in ["trace", "debug", "info", "warn", "error"] {
            let filter = EnvFilter::try_new(directives(level)).expect("valid directives");
            let text = filter.to_string();
            assert!(text.contains("rustls=error"), "{text}");
            assert!(text.contains(level), "{text}");
        }
    }
}
