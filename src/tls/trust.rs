//! `wharf trust`: the local CA of `mode = "internal"` made trusted on this
//! machine, as `caddy trust` and `mkcert -install` do, so that browsers,
//! curl and other programs accept the development certificates without a
//! warning.
//!
//! Two kinds of store, each with the tool made for it:
//! - the system's (read by curl, OpenSSL, Go, Python, ...): a file in the
//!   distribution's anchors directory, then its update command
//!   (`update-ca-certificates` on Debian, Ubuntu, Alpine and openSUSE;
//!   `update-ca-trust` on Fedora, RHEL and Arch). Needs root;
//! - the NSS databases browsers keep per user: Chromium's and Chrome's
//!   `~/.pki/nssdb` (made when missing) and each Firefox profile's, through
//!   NSS's own `certutil`. Under `sudo` they are the invoking user's, and
//!   `certutil` runs as that user.
//!
//! A store that cannot be reached is skipped with the reason and the fix;
//! nothing here panics on what it finds on the machine.

mod browsers;

use std::path::{Path, PathBuf};
use std::process::Command;

use browsers::browsers;

/// What became of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the store and what was run.
    Done(String),
    /// Not touched: the store, why, and what to do.
    Skipped {
        store: String,
        why: String,
        fix: String,
    },
    /// Tried and failed: the store and the tool's own words.
    Failed { store: String, error: String },
}

/// Errors before any store is touched.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the local CA certificate {path}: {source}; run `wharf run` once, or check tls.storage")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate wharf can read: {reason}; delete {path} and its ca.key to make a new CA")]
    Parse { path: PathBuf, reason: String },
}

/// The CA being trusted: its PEM and the name it gets in every store,
/// unique to this CA (by its serial number), so two projects' CAs do not
/// replace each other and `--uninstall` removes only this one.
#[derive(Debug)]
pub struct Ca {
    pub(super) pem: String,
    /// `wharf-local-ca-<serial>`: a file name and an NSS nickname.
    pub name: String,
}

impl Ca {
    /// Reads the CA certificate at `path`.
    pub fn read(path: &Path) -> Result<Ca, TrustError> {
        let pem = std::fs::read_to_string(path).map_err(|source| TrustError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |reason: String| TrustError::Parse {
            path: path.to_path_buf(),
            reason,
        };
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| parse_error(e.to_string()))?;
        let cert = block.parse_x509().map_err(|e| parse_error(e.to_string()))?;
        let serial: String = cert
            .raw_serial()
            .iter()
            .take(8)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Ca {
            pem,
            name: format!("wharf-local-ca-{serial}"),
        })
    }
}

/// Where the stores are: the root of the file system (for tests and
/// containers), whether this process is root, and the user whose browser
/// databases to use.
#[derive(Debug, Clone)]
pub struct Machine {
    pub root: PathBuf,
    pub is_root: bool,
    /// The home directory whose NSS databases are used, and the user to
    /// run `certutil` as when it is not this process's (under `sudo`).
    pub home: Option<PathBuf>,
    pub run_as: Option<String>,
}

impl Machine {
    /// This machine, as the current process sees it.
    pub fn this() -> Machine {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let is_root = unsafe { libc::geteuid() } == 0;
        let sudo_user = std::env::var("SUDO_USER")
            .ok()
            .filter(|user| is_root && !user.is_empty() && user != "root");
        let (home, run_as) = match sudo_user.as_deref().and_then(home_of) {
            Some(home) => (Some(home), sudo_user),
            None => (std::env::var_os("HOME").map(PathBuf::from), None),
        };
        Machine {
            root: PathBuf::from("/"),
            is_root,
            home,
            run_as,
        }
    }
}

/// A system trust store: where anchors go and the command that rebuilds
/// the bundle programs read.
struct SystemStore {
    anchors: &'static str,
    update: &'static [&'static str],
}

/// Debian, Ubuntu and Alpine; Fedora and RHEL; Arch; openSUSE.
const SYSTEM_STORES: [SystemStore; 4] = [
    SystemStore {
        anchors: "usr/local/share/ca-certificates",
        update: &["update-ca-certificates"],
    },
    SystemStore {
        anchors: "etc/pki/ca-trust/source/anchors",
        update: &["update-ca-trust", "extract"],
    },
    SystemStore {
        anchors: "etc/ca-certificates/trust-source/anchors",
        update: &["update-ca-trust", "extract"],
    },
    SystemStore {
        anchors: "etc/pki/trust/anchors",
        update: &["update-ca-certificates"],
    },
];

/// Installs `ca` in every store of `machine` it can reach.
pub fn install(ca: &Ca, machine: &Machine, config: &Path) -> Vec<Outcome> {
    let mut outcomes = vec![system(ca, machine, config, true)];
    outcomes.extend(browsers(ca, machine, true));
    outcomes
}

/// Removes `ca` from every store of `machine` it can reach.
pub fn uninstall(ca: &Ca, machine: &Machine, config: &Path) -> Vec<Outcome> {
    let mut outcomes = vec![system(ca, machine, config, false)];
    outcomes.extend(browsers(ca, machine, false));
    outcomes
}

fn system(ca: &Ca, machine: &Machine, config: &Path, install: bool) -> Outcome {
    let store = "system trust store".to_string();
    let found = SYSTEM_STORES
        .iter()
        .find(|s| machine.root.join(s.anchors).is_dir() && find_program(s.update[0]).is_some());
    let Some(found) = found else {
        return Outcome::Skipped {
            store,
            why: "no anchors directory with its update command (update-ca-certificates or update-ca-trust) was found".into(),
            fix: "install the ca-certificates package, or add the CA by hand".into(),
        };
    };
    let file = machine
        .root
        .join(found.anchors)
        .join(format!("{}.crt", ca.name));
    if !machine.is_root {
        let verb = if install {
            "trust"
        } else {
            "trust --uninstall"
        };
        return Outcome::Skipped {
            store,
            why: format!("writing {} needs root", file.display()),
            fix: format!("sudo wharf {verb} -c {}", config.display()),
        };
    }
    let changed = if install {
        std::fs::write(&file, &ca.pem)
    } else {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::Done(format!("{store}: {} was not there", file.display()))
            }
            other => other,
        }
    };
    if let Err(e) = changed {
        return Outcome::Failed {
            store,
            error: format!("{}: {e}", file.display()),
        };
    }
    match run(found.update, None) {
        Ok(()) => Outcome::Done(format!(
            "{store}: {} {}, then `{}`",
            if install { "wrote" } else { "removed" },
            file.display(),
            found.update.join(" ")
        )),
        Err(error) => Outcome::Failed { store, error },
    }
}

/// Runs `argv` (as `user` through `runuser` when given) and returns its
/// error output when it fails.
pub(super) fn run(argv: &[&str], user: Option<&str>) -> Result<(), String> {
    let mut command = match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).args(argv);
            command
        }
        None => {
            let program = find_program(argv[0]).unwrap_or_else(|| PathBuf::from(argv[0]));
            let mut command = Command::new(program);
            command.args(&argv[1..]);
            command
        }
    };
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said.trim();
    Err(format!(
        "`{}` failed ({}){}{said}",
        argv.join(" "),
        output.status,
        if said.is_empty() { "" } else { ": " }
    ))
}

/// `program` in `PATH`, or in the sbin directories a user's `PATH` often
/// lacks (where the update commands live).
pub(super) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The home directory of `user`, from the password database.
fn home_of(user: &str) -> Option<PathBuf> {
    let name = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam takes a NUL-terminated name and returns NULL or a
    // pointer to a static record, read at once before any other call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: a non-NULL record's pw_dir is a NUL-terminated string.
    let dir = unsafe { std::ffi::CStr::from_ptr((*entry).pw_dir) };
    Some(PathBuf::from(dir.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ca_has_its_own_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = crate::tls::internal::LocalCa::load_or_create(&dir.path().join("a")).expect("ca");
        let two = crate::tls::internal::LocalCa::load_or_create(&dir.path().join("b")).expect("ca");
        let one = Ca::read(&one.cert_path).expect("read");
        let two = Ca::read(&two.cert_path).expect("read");
        assert!(one.name.starts_with("wharf-local-ca-"), "{}", one.name);
        assert_eq!(one.name.len(), "wharf-local-ca-".len() + 16, "{}", one.name);
        assert_ne!(one.name, two.name);
    }

    #[test]
    fn an_unreadable_or_foreign_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Ca::read(&dir.path().join("ca.pem")).expect_err("missing");
        assert!(missing.to_string().contains("wharf run"), "{missing}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").expect("write");
        let error = Ca::read(&garbage).expect_err("garbage");
        assert!(error.to_string().contains("delete"), "{error}");
    }

    #[test]
    fn without_root_the_system_store_is_left_with_the_sudo_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = crate::tls::internal::LocalCa::load_or_create(dir.path()).expect("ca");
        let ca = Ca::read(&ca.cert_path).expect("read");
        let root = tempfile::tempdir().expect("root");
        std::fs::create_dir_all(root.path().join("usr/local/share/ca-certificates"))
            .expect("anchors");
        let machine = Machine {
            root: root.path().to_path_buf(),
            is_root: false,
            home: None,
            run_as: None,
        };
        let outcome = system(&ca, &machine, Path::new("/srv/app/wharf.toml"), true);
        match (find_program("update-ca-certificates"), outcome) {
            (Some(_), Outcome::Skipped { why, fix, .. }) => {
                assert!(why.contains("needs root"), "{why}");
                assert_eq!(fix, "sudo wharf trust -c /srv/app/wharf.toml");
            }
            (None, Outcome::Skipped { fix, .. }) => assert!(fix.contains("ca-certificates")),
            (_, other) => panic!("{other:?}"),
        }
    }
}
