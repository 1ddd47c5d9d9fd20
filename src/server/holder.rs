//! Who holds a TCP port: reads /proc/net/tcp{,6} for the listening socket's
//! inode, then finds the process with that socket open. Best effort: other
//! users' processes are invisible without root, and then we say nothing.

use std::fs;

/// A process that holds a listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command name, from /proc/PID/comm.
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// "pid 1234 (nginx)" for the process listening on `port`, if visible.
pub fn find(port: u16) -> Option<String> {
    find_process(port).map(|holder| holder.to_string())
}

/// The process listening on `port`, if visible.
pub fn find_process(port: u16) -> Option<Holder> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let needle = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == needle.as_str()) {
                let command = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some(Holder {
                    pid,
                    command: command.trim().to_string(),
                });
            }
        }
    }
    None
}

/// The inode of the socket in state LISTEN (0A) on `port` in a
/// /proc/net/tcp table.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    let port_hex = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let state = fields.get(3)?;
        if local.ends_with(&port_hex) && *state == "0A" {
            fields.get(9)?.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_holding_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let holder = find(port).expect("holder found");
        assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        );
    }
}
