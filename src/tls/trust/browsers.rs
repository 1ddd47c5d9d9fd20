//! The browsers' NSS databases: Chromium's and Chrome's `~/.pki/nssdb`
//! (made when missing) and every Firefox profile's, through NSS's own
//! `certutil`, as the user whose databases they are.

use std::path::{Path, PathBuf};

use super::{find_program, run, Ca, Machine, Outcome};

/// Chromium's database, made when missing, and every Firefox profile's.
pub(super) fn browsers(ca: &Ca, machine: &Machine, install: bool) -> Vec<Outcome> {
    let Some(home) = &machine.home else {
        return vec![Outcome::Skipped {
            store: "browsers (NSS)".into(),
            why: "HOME is not set".into(),
            fix: "run wharf trust from your own session".into(),
        }];
    };
    let mut databases = vec![("Chromium and Chrome", home.join(".pki/nssdb"))];
    for profiles in [".mozilla/firefox", "snap/firefox/common/.mozilla/firefox"] {
        let Ok(entries) = std::fs::read_dir(home.join(profiles)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.join("cert9.db").is_file())
            .collect();
        found.sort();
        databases.extend(found.into_iter().map(|path| ("Firefox", path)));
    }
    if find_program("certutil").is_none() {
        return vec![Outcome::Skipped {
            store: "browsers (NSS)".into(),
            why: "certutil is not installed".into(),
            fix: "apt-get install libnss3-tools (Fedora: dnf install nss-tools), then run wharf trust again".into(),
        }];
    }
    let run_as = machine.run_as.as_deref();
    let mut outcomes = Vec::new();
    for (browser, dir) in databases {
        let store = format!("{browser} ({})", dir.display());
        let db = format!("sql:{}", dir.display());
        let fresh = !dir.join("cert9.db").is_file();
        if fresh && !install {
            continue;
        }
        let result = if install {
            new_database(&dir, &db, run_as)
                .and_then(|()| install_nss(ca, &db, run_as))
                .map(|()| format!("{store}: added {}", ca.name))
        } else {
            run(&["certutil", "-D", "-d", &db, "-n", &ca.name], run_as)
                .map(|()| format!("{store}: removed {}", ca.name))
                .or_else(|error| {
                    if error.contains("could not find certificate") {
                        Ok(format!("{store}: {} was not there", ca.name))
                    } else {
                        Err(error)
                    }
                })
        };
        outcomes.push(match result {
            Ok(done) => Outcome::Done(done),
            Err(error) => Outcome::Failed { store, error },
        });
    }
    outcomes
}

/// Makes an empty NSS database in `dir` when there is none (Chromium makes
/// one on first start; a machine where it never ran has none).
fn new_database(dir: &Path, db: &str, run_as: Option<&str>) -> Result<(), String> {
    if dir.join("cert9.db").is_file() {
        return Ok(());
    }
    match run_as {
        // The user makes it, so that it is theirs.
        Some(_) => run(&["mkdir", "-p", &dir.display().to_string()], run_as)?,
        None => std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?,
    }
    run(&["certutil", "-N", "-d", db, "--empty-password"], run_as)
}

/// Adds the CA as trusted to issue server certificates (`C,,`). The PEM
/// goes through a file: certutil reads a certificate from `-i` only.
fn install_nss(ca: &Ca, db: &str, run_as: Option<&str>) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("wharf-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!("{}.pem", ca.name));
    let written = std::fs::write(&file, &ca.pem).map_err(|e| format!("{}: {e}", file.display()));
    if run_as.is_some() {
        // The user certutil runs as must be able to read it.
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(&dir, 0o755), (&file, 0o644)] {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        }
    }
    let file_arg = file.display().to_string();
    let result = written.and_then(|()| {
        run(
            &[
                "certutil", "-A", "-d", db, "-t", "C,,", "-n", &ca.name, "-i", &file_arg,
            ],
            run_as,
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
