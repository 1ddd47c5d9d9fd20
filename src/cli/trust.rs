//! `wharf trust`: make this machine trust the local CA of a config with
//! `tls.mode = "internal"` (the system store and the browsers' NSS
//! databases, see `tls::trust`), or stop trusting it with `--uninstall`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{self, TlsMode};
use crate::tls::trust::{self, Ca, Machine, Outcome};

pub fn trust(path: &Path, uninstall: bool) -> anyhow::Result<ExitCode> {
    let config = config::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    if config.tls.mode != TlsMode::Internal {
        anyhow::bail!(
            "{}: tls.mode is not \"internal\", so there is no local CA to trust; \
             ACME certificates are trusted everywhere already, and your own (mode = \"files\") \
             come from a CA you manage",
            path.display()
        );
    }
    let storage = crate::tls::storage::Storage::new(&config.tls.storage);
    let cert = storage.internal().join("ca.pem");
    let machine = Machine::this();
    if !cert.exists() {
        if uninstall {
            eprintln!(
                "wharf: {} does not exist: nothing to remove",
                cert.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if machine.run_as.is_some() {
            // Made by root, its key would be unreadable by the user who
            // runs wharf.
            anyhow::bail!(
                "the local CA {} does not exist yet; run `wharf trust -c {}` without sudo \
                 (or `wharf run` once) to make it as the user who runs wharf, then again with sudo",
                cert.display(),
                path.display()
            );
        }
        crate::tls::internal::LocalCa::load_or_create(&storage.internal())
            .with_context(|| format!("making the local CA in {}", storage.internal().display()))?;
    }
    let ca = Ca::read(&cert)?;
    let outcomes = if uninstall {
        trust::uninstall(&ca, &machine, path)
    } else {
        trust::install(&ca, &machine, path)
    };
    let mut done = 0;
    let mut failed = 0;
    for outcome in &outcomes {
        match outcome {
            Outcome::Done(what) => {
                done += 1;
                println!("ok    {what}");
            }
            Outcome::Skipped { store, why, fix } => {
                println!("skip  {store}: {why}\n      fix: {fix}");
            }
            Outcome::Failed { store, error } => {
                failed += 1;
                println!("FAIL  {store}: {error}");
            }
        }
    }
    let now = if uninstall {
        "is gone from the stores marked ok"
    } else {
        "is trusted by the stores marked ok"
    };
    eprintln!("wharf: the local CA {} ({}) {now}", cert.display(), ca.name);
    Ok(if failed == 0 && (done > 0 || uninstall) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
