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
