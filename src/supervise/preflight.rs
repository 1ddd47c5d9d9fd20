//! Whether an app's program would start, found by looking instead of
//! starting it (for `wharf doctor`): the same lookup as a start
//! (`spawn::lookup`) and the same explanations (`SpawnError`).

use std::path::{Path, PathBuf};

pub use super::spawn::SpawnError;

use super::spawn::{lookup, Lookup};
use crate::config::App;

/// What starting the program would fail with
/// ([`spawn`](super::spawn::spawn)): an empty command, a missing working
/// directory or program, a file that is not executable, a script whose
/// `#!` interpreter is missing. Returns the program's path. It looks as
/// the current user, who may not be the one wharf runs as.
pub fn preflight(name: &str, app: &App) -> Result<PathBuf, SpawnError> {
    let app_name = name.to_string();
    let Some(program) = app.command.first() else {
        return Err(SpawnError::EmptyCommand { app: app_name });
    };
    if !app.dir.is_dir() {
        return Err(SpawnError::NoDirectory {
            app: app_name,
            dir: app.dir.clone(),
        });
    }
    let Lookup {
        found,
        path,
        search,
    } = lookup(app, program);
    if found.is_none() {
        return Err(if program.contains('/') {
            SpawnError::NoProgram {
                app: app_name,
                path,
            }
        } else {
            SpawnError::NotInPath {
                app: app_name,
                program: program.to_string(),
                path: search,
            }
        });
    }
    // A directory passes access(X_OK) but cannot be run: exec says EACCES.
    if !path.is_file() || !executable(&path) {
        return Err(SpawnError::NotExecutable {
            app: app_name,
            path,
        });
    }
    // Binaries need no read permission to run; without it, say nothing more.
    let Ok(head) = read_head(&path) else {
        return Ok(path);
    };
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.split_whitespace();
        let interpreter = words.next().unwrap_or_default();
        if interpreter.is_empty() || !app.dir.join(interpreter).is_file() {
            return Err(SpawnError::NoInterpreter {
                app: app_name,
                path,
            });
        }
        // `#!/usr/bin/env node`: env looks `node` up in the app's PATH and
        // the instance exits 127 at once when it is not there.
        if Path::new(interpreter).file_name() == Some("env".as_ref()) {
            let wanted = words.find(|word| !word.starts_with('-'));
            if let Some(wanted) = wanted.filter(|w| !w.contains('=')) {
                let Lookup { found, search, .. } = lookup(app, wanted);
                if found.is_none() {
                    return Err(SpawnError::NoEnvInterpreter {
                        app: app_name,
                        path,
                        interpreter: wanted.to_string(),
                        search,
                    });
                }
            }
        }
    }
    // Anything else is left to the kernel (and to execvp, which runs a
    // script without `#!` with /bin/sh): no guess that could be wrong.
    Ok(path)
}

/// Whether this process may execute `path` (every directory on the way
/// searchable, the file executable).
fn executable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads the NUL-terminated string, which lives for
    // the whole call, and keeps no pointer to it.
    unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
}

/// The first bytes of a file: enough for `#!` and its interpreter.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(256);
    std::fs::File::open(path)?
        .take(256)
        .read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// `[app.web]` running `program` from `dir`.
    fn app(dir: &Path, program: &str) -> App {
        let text = format!("[app.web]\ncommand = [{program:?}]\nport = 9001\n");
        let config = crate::config::parse(&text, "test.toml", dir, &|_| None).expect("config");
        config.apps["web"].clone()
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn preflight_says_what_spawn_would_fail_with_without_starting_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        write(dir, "plain", "echo hi\n", 0o644);
        write(dir, "orphan", "#!/no/such/interpreter\n", 0o755);
        write(dir, "script", "#! /bin/sh -e\nexec true\n", 0o755);
        std::fs::create_dir(dir.join("folder")).expect("mkdir");

        let check = |program: &str| preflight("web", &app(dir, program));
        assert!(matches!(
            check("./missing"),
            Err(SpawnError::NoProgram { .. })
        ));
        assert!(matches!(
            check("no-such-program-anywhere"),
            Err(SpawnError::NotInPath { .. })
        ));
        assert!(matches!(
            check("./plain"),
            Err(SpawnError::NotExecutable { .. })
        ));
        assert!(matches!(
            check("./folder"),
            Err(SpawnError::NotExecutable { .. })
        ));
        assert!(matches!(
            check("./orphan"),
            Err(SpawnError::NoInterpreter { .. })
        ));
        assert_eq!(check("./script").expect("runs"), dir.join("./script"));
        write(dir, "node-app", "#!/usr/bin/env no-such-node-here\n", 0o755);
        match check("./node-app") {
            Err(error @ SpawnError::NoEnvInterpreter { .. }) => {
                let said = error.to_string();
                assert!(said.contains("no-such-node-here"), "{said}");
                assert!(said.contains("not found in PATH"), "{said}");
            }
            other => panic!("an env interpreter missing from PATH: {other:?}"),
        }
        write(dir, "env-sh", "#!/usr/bin/env -S sh -e\nexec true\n", 0o755);
        assert!(check("./env-sh").is_ok());
        assert!(check("sh").expect("in PATH").is_absolute());

        let mut gone = app(dir, "sh");
        gone.dir = dir.join("nowhere");
        assert!(matches!(
            preflight("web", &gone),
            Err(SpawnError::NoDirectory { .. })
        ));
        gone.command.clear();
        assert!(matches!(
            preflight("web", &gone),
            Err(SpawnError::EmptyCommand { .. })
        ));
    }
}
