//! The wharf process under test: started with a config written to a temp
//! dir, its listening addresses read from its own log, its logs collected,
//! killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

/// A running wharf process; killed on drop.
pub struct Wharf {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// wharf's own log lines (stderr), collected as they arrive.
    pub logs: Arc<Mutex<Vec<String>>>,
}

/// The `[server]` and `[log]` sections every test config gets, plus
/// `server_extra` lines inside `[server]`.
pub fn config_text(dir: &Path, server_extra: &str, body: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n{server_extra}\n\n\
         [log]\nformat = \"json\"\naccess = \"{}\"\nlevel = \"info\"\n\n{body}\n",
        dir.join("access.log").display()
    )
}

impl Wharf {
    /// Starts wharf with `body` (sites and upstreams) and extra `[server]` keys.
    pub fn start(server_extra: &str, body: &str) -> Wharf {
        let dir = tempfile::tempdir().expect("temp dir");
        Wharf::start_in(dir, server_extra, body)
    }

    /// Like `start`, in a directory the test prepared (static files...).
    pub fn start_in(dir: tempfile::TempDir, server_extra: &str, body: &str) -> Wharf {
        let config_path = dir.path().join("wharf.toml");
        let mut command = Command::new(WHARF);
        command.args(["run", "-c"]).arg(&config_path);
        Wharf::start_command(dir, command, server_extra, body)
    }

    /// Like `start`, with wharf started by a shell after `ulimit {limit}`
    /// (e.g. `-S -n 128`: a soft open-file limit of 128).
    pub fn start_under_ulimit(limit: &str, server_extra: &str, body: &str) -> Wharf {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("wharf.toml");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit {limit} && exec \"$0\" run -c \"$1\""))
            .arg(WHARF)
            .arg(&config_path);
        Wharf::start_command(dir, command, server_extra, body)
    }

    /// Writes the config into `dir` and runs `command`, which starts wharf
    /// with that config.
    fn start_command(
        dir: tempfile::TempDir,
        mut command: Command,
        server_extra: &str,
        body: &str,
    ) -> Wharf {
        let config_path = dir.path().join("wharf.toml");
        std::fs::write(&config_path, config_text(dir.path(), server_extra, body))
            .expect("write config");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wharf");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let collected = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let (Some(msg), Some(addr)) = (v["message"].as_str(), v["addr"].as_str()) {
                        let _ = tx.send((msg.to_string(), addr.to_string()));
                    }
                }
                collected.lock().expect("logs").push(line);
            }
        });
        let (mut addr, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while addr.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((msg, a)) if msg == "listening" => addr = a.parse().ok(),
                Ok((msg, a)) if msg == "admin API listening" => admin = a.parse().ok(),
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "wharf did not start; logs: {:?}",
                        logs.lock().expect("logs")
                    );
                }
            }
        }
        Wharf {
            child,
            dir,
            config_path,
            addr: addr.expect("addr"),
            admin: admin.expect("admin"),
            logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name ("HUP", "TERM") with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Rewrites the config body (same server/log sections).
    pub fn rewrite(&self, server_extra: &str, body: &str) {
        let text = config_text(self.dir.path(), server_extra, body);
        let tmp = self.dir.path().join("wharf.toml.tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &self.config_path).expect("rename");
    }

    /// Whether the process is still running (has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Access log lines written so far, parsed.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many of wharf's log lines so far contain `needle`.
    pub fn logs_count(&self, needle: &str) -> usize {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// wharf's log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    pub fn logs_contain(&self, needle: &str) -> bool {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Wharf {
    /// Starts wharf with a whole config file written by the test (for
    /// fixed ports, e.g. an ACME server validating on wharf's listeners).
    /// The text must set `admin`; `addr` is the first plain-HTTP listener.
    pub fn start_with_config(dir: tempfile::TempDir, text: &str) -> Wharf {
        let config_path = dir.path().join("wharf.toml");
        let mut command = Command::new(WHARF);
        command.args(["run", "-c"]).arg(&config_path);
        Wharf::start_config_command(dir, text, command)
    }

    /// Like `start_with_config`, with wharf started by a shell after
    /// `ulimit {limit}` (e.g. `-n 1024`).
    pub fn start_with_config_under_ulimit(
        dir: tempfile::TempDir,
        text: &str,
        limit: &str,
    ) -> Wharf {
        let config_path = dir.path().join("wharf.toml");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit {limit} && exec \"$0\" run -c \"$1\""))
            .arg(WHARF)
            .arg(&config_path);
        Wharf::start_config_command(dir, text, command)
    }

    fn start_config_command(dir: tempfile::TempDir, text: &str, mut command: Command) -> Wharf {
        let config_path = dir.path().join("wharf.toml");
        std::fs::write(&config_path, text).expect("write config");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wharf");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let collected = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().expect("logs").push(line);
            }
        });
        let found = |message: &str| -> Option<SocketAddr> {
            logs.lock().expect("logs").iter().find_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                (v["message"] == message).then(|| v["addr"].as_str()?.parse().ok())?
            })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let (Some(addr), Some(admin)) = (found("listening"), found("admin API listening")) {
                return Wharf {
                    child,
                    dir,
                    config_path,
                    addr,
                    admin,
                    logs,
                };
            }
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!(
                    "wharf did not start; logs: {:?}",
                    logs.lock().expect("logs")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first HTTPS listener's bound address, once it is listening.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.logs.lock().expect("logs").iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["message"] == "listening for HTTPS").then(|| v["addr"].as_str()?.parse().ok())?
        })
    }

    /// wharf's log lines (JSON) whose message is `message`.
    pub fn log_events(&self, message: &str) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }
}
