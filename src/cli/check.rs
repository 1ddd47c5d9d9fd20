//! `wharf check`: load and validate a config file, print every problem.

use std::path::Path;
use std::process::ExitCode;

use crate::config;

pub fn check(path: &Path, print: bool) -> anyhow::Result<ExitCode> {
    match config::load(path) {
        Ok(config) => {
            if let Some(warning) = config::admin_warning(&config.server) {
                eprintln!("wharf: warning: {warning}");
            }
            warn_unenforceable_limits(&config);
            if print {
                print!("{}", config.render_redacted());
            }
            eprintln!("wharf: {} is valid", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Says which app limits this machine cannot enforce (wharf still runs).
fn warn_unenforceable_limits(config: &config::Config) {
    if config.apps.is_empty() {
        return;
    }
    let backend = crate::supervise::limits::detect(false);
    for (name, app) in &config.apps {
        if app.cpu_limit.is_some() && !backend.enforces_cpu() {
            eprintln!(
                "wharf: warning: app.{name}.cpu_limit cannot be enforced here: limits use {}",
                backend.describe()
            );
        }
        if app.memory_limit.is_some() && backend == crate::supervise::limits::Backend::Rlimits {
            eprintln!("wharf: warning: app.{name}.memory_limit is only approximated (RLIMIT_AS caps address space, not resident memory): no writable cgroup here");
        }
    }
}
