//! The wharf that is already running a config, as its admin API described
//! itself (`GET /status`, read by the CLI): its ports are not conflicts
//! when it serves the config being examined, since `wharf reload` would
//! apply a change there instead of a second wharf starting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::observe::status::Status;
use crate::server::holder::Holder;

/// A wharf that answered on the config's admin address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub admin: SocketAddr,
    /// The config it runs, as it reported it.
    pub config: String,
    /// Whether that is the file being examined.
    pub serves_this: bool,
    /// The ports its app instances were given.
    pub instance_ports: Vec<u16>,
}

impl Running {
    /// From the running wharf's status; `examined` is the config file
    /// `wharf doctor` was given.
    pub fn from_status(status: &Status, admin: SocketAddr, examined: &Path) -> Running {
        Running {
            pid: status.pid,
            admin,
            config: status.config.clone(),
            serves_this: same_file(&status.config, status.pid, examined),
            instance_ports: status.apps.iter().map(|instance| instance.port).collect(),
        }
    }

    /// Whether the holder of a listener port is this wharf. A holder this
    /// user cannot see (another user's process) is taken to be it: its
    /// admin API answered for this config.
    pub fn holds_listener(&self, holder: Option<&Holder>) -> bool {
        holder.is_none_or(|h| h.pid == self.pid)
    }

    /// Whether the holder of an app port is one of this wharf's instances
    /// (or a process they started). Without a visible holder, the port
    /// must be one of its instances' ports.
    pub fn holds_app_port(&self, port: u16, holder: Option<&Holder>) -> bool {
        match holder {
            Some(h) => descends_from(h.pid, self.pid),
            None => self.instance_ports.contains(&port),
        }
    }
}

/// Whether the config a wharf reported (`reported`, relative to that
/// wharf's working directory when not absolute) is the file `examined`.
fn same_file(reported: &str, pid: u32, examined: &Path) -> bool {
    let reported = Path::new(reported);
    let reported: PathBuf = if reported.is_absolute() {
        reported.to_path_buf()
    } else {
        match std::fs::read_link(format!("/proc/{pid}/cwd")) {
            Ok(cwd) => cwd.join(reported),
            Err(_) => reported.to_path_buf(),
        }
    };
    match (
        std::fs::canonicalize(&reported),
        std::fs::canonicalize(examined),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether `pid` is `ancestor` or one of its descendants, following the
/// parent pids in /proc (a bounded walk: pids can be reused, chains can't
/// be long).
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    for _ in 0..64 {
        if current == ancestor {
            return true;
        }
        match parent(current) {
            Some(next) if next != 0 && next != current => current = next,
            _ => return false,
        }
    }
    false
}

/// The parent pid from /proc/PID/stat: the field after the `(comm)`, which
/// may itself contain spaces and parentheses.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_descends_from_its_parent_and_not_from_a_sibling() {
        let me = std::process::id();
        let parent_pid = parent(me).expect("parent");
        assert!(descends_from(me, me));
        assert!(descends_from(me, parent_pid));
        assert!(!descends_from(parent_pid, me));
    }

    #[test]
    fn a_relative_config_is_read_from_the_wharf_working_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("wharf.toml");
        std::fs::write(&file, "").expect("write");
        assert!(same_file(&file.display().to_string(), 0, &file));
        let cwd = std::env::current_dir().expect("cwd");
        let relative = pathdiff(&file, &cwd);
        assert!(same_file(&relative, std::process::id(), &file));
        assert!(!same_file("other.toml", std::process::id(), &file));
    }

    /// `file` written relative to `base` with `..` steps.
    fn pathdiff(file: &Path, base: &Path) -> String {
        let ups = base.components().count().saturating_sub(1);
        format!("{}{}", "../".repeat(ups), file.display()).replace("//", "/")
    }
}
