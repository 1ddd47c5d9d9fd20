//! Starting one instance's process: argv without a shell, its own process
//! group, `PORT` and the configured environment, rlimits, and a parent-death
//! signal so no instance outlives wharf, even when wharf is SIGKILLed.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::config::App;

/// Limits applied with setrlimit in the child before exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rlimits {
    pub open_files: Option<u64>,
    /// Address-space cap, used only when no cgroup limits memory.
    pub address_space: Option<u64>,
}

/// Why an instance's process could not be started, said so the user
/// knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("app.{app}.command is empty; give the program and its arguments, e.g. command = [\"./server\"]")]
    EmptyCommand { app: String },
    #[error("the working directory {} of app {app} does not exist; create it or fix app.{app}.dir", dir.display())]
    NoDirectory { app: String, dir: PathBuf },
    #[error("program {program:?} of app {app} was not found in PATH ({path}); install it, or give its full path as the first element of app.{app}.command")]
    NotInPath {
        app: String,
        program: String,
        path: String,
    },
    #[error("program {} of app {app} does not exist; build or install it there, or fix the first element of app.{app}.command", path.display())]
    NoProgram { app: String, path: PathBuf },
    #[error("program {} of app {app} exists, but the interpreter its #! line names does not; install it or fix the #! line", path.display())]
    NoInterpreter { app: String, path: PathBuf },
    #[error("program {} of app {app} starts with #!/usr/bin/env {interpreter}, and {interpreter} was not found in PATH ({search}); install it, or set PATH in app.{app}.env", path.display())]
    NoEnvInterpreter {
        app: String,
        path: PathBuf,
        interpreter: String,
        search: String,
    },
    #[error("program {} of app {app} is not executable (permission denied); make it executable (chmod +x) and let wharf's user enter every directory on its path", path.display())]
    NotExecutable { app: String, path: PathBuf },
    #[error("program {} of app {app} is neither a binary nor a script starting with #!; add the #! line, or run it through its interpreter (command = [\"sh\", \"{}\"])", path.display(), path.display())]
    NotRunnable { app: String, path: PathBuf },
    #[error("cannot start program {} of app {app}: {source}", path.display())]
    Other {
        app: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Spawns the process for instance of app `name` listening on `port`.
pub fn spawn(name: &str, app: &App, port: u16, rlimits: Rlimits) -> Result<Child, SpawnError> {
    let Some((program, args)) = app.command.split_first() else {
        return Err(SpawnError::EmptyCommand {
            app: name.to_string(),
        });
    };
    // The limit wharf was started with, before it raised its own: what the
    // app would have had without wharf (programs using select() break
    // with descriptors above 1,024). Read here: the child may not allocate.
    let restore = match rlimits.open_files {
        Some(_) => None,
        None => crate::fd_limit::started_with(),
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&app.dir)
        .envs(&app.env)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe syscalls (prctl, getppid, setrlimit, _exit);
    // it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            // Die with wharf: the kernel sends SIGKILL when the parent
            // thread exits, including when wharf itself is SIGKILLed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // wharf turned transparent huge pages off for itself
            // (main.rs); the app gets the machine's default back.
            libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
            // wharf may have died between fork and prctl.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            if let Some(n) = rlimits.open_files {
                let limit = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(started) = restore {
                let limit = libc::rlimit {
                    rlim_cur: started.soft,
                    rlim_max: started.hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(bytes) = rlimits.address_space {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|error| explain(name, app, program, error))
}

/// Where the program of an app is, or would be: a program with a slash
/// is run from the working directory; a bare name is looked up in PATH
/// (the app's own, when its env sets one).
pub(super) struct Lookup {
    /// The program's file, when there is one.
    pub found: Option<PathBuf>,
    /// `found`, or the path it was expected at (for messages).
    pub path: PathBuf,
    /// The PATH searched.
    pub search: String,
}

pub(super) fn lookup(app: &App, program: &str) -> Lookup {
    let search = app
        .env
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    let found = if program.contains('/') {
        Some(app.dir.join(program)).filter(|path| path.exists())
    } else {
        std::env::split_paths(&search)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    };
    let path = found.clone().unwrap_or_else(|| {
        if program.contains('/') {
            app.dir.join(program)
        } else {
            PathBuf::from(program)
        }
    });
    Lookup {
        found,
        path,
        search,
    }
}

/// Turns a failed spawn into what the user has to fix: the program or the
/// working directory that is missing, or a program that cannot be run.
fn explain(name: &str, app: &App, program: &str, error: std::io::Error) -> SpawnError {
    let app_name = name.to_string();
    let Lookup {
        found,
        path,
        search,
    } = lookup(app, program);
    match error.kind() {
        ErrorKind::NotFound if !app.dir.is_dir() => SpawnError::NoDirectory {
            app: app_name,
            dir: app.dir.clone(),
        },
        ErrorKind::NotFound if found.is_some() => SpawnError::NoInterpreter {
            app: app_name,
            path,
        },
        ErrorKind::NotFound if !program.contains('/') => SpawnError::NotInPath {
            app: app_name,
            program: program.to_string(),
            path: search,
        },
        ErrorKind::NotFound => SpawnError::NoProgram {
            app: app_name,
            path,
        },
        ErrorKind::PermissionDenied => SpawnError::NotExecutable {
            app: app_name,
            path,
        },
        _ if error.raw_os_error() == Some(libc::ENOEXEC) => SpawnError::NotRunnable {
            app: app_name,
            path,
        },
        _ => SpawnError::Other {
            app: app_name,
            path,
            source: error,
        },
    }
}

/// Sends `signal` to the whole process group of `pid`.
pub fn signal_group(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no
    // memory is shared with the callee.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// The signal number for a configured name like "TERM".
pub fn signal_number(name: &str) -> i32 {
    match name {
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "HUP" => libc::SIGHUP,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "KILL" => libc::SIGKILL,
        _ => libc::SIGTERM,
    }
}

/// A readable name for a signal number.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGBUS => "SIGBUS".into(),
        other => format!("signal {other}"),
    }
}

/// What the shell's and `env`'s exit codes for a command they could not
/// run mean, so a crash loop says what to fix.
pub fn exit_hint(code: i32) -> &'static str {
    match code {
        127 => " (a command it runs was not found: a program it starts, or the interpreter a script's #! line names, is not installed or not in PATH; `wharf doctor` checks the app's own program)",
        126 => " (a command it runs was found but could not be executed: check its permissions)",
        _ => "",
    }
}
