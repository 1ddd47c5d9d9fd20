//! Starting one instance's process: argv without a shell, its own process
//! group, `PORT` and the configured environment, rlimits, and a parent-death
//! signal so no instance outlives wharf, even when wharf is SIGKILLed.

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

/// Spawns the process for an instance listening on `port`.
pub fn spawn(app: &App, port: u16, rlimits: Rlimits) -> std::io::Result<Child> {
    let Some((program, args)) = app.command.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty command",
        ));
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
    command.spawn()
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
