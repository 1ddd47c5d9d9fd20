//! Shared harness for integration tests: a real `wharf` process with a
//! config written to a temp dir, an in-process echo backend, and a small
//! HTTP client. Everything binds 127.0.0.1 port 0.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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

/// Starts the echo backend in this process on a free port.
pub async fn echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = wharf::echo::serve(listener).await;
    });
    addr
}

/// A block of `n` free consecutive loopback ports for wharf to listen on,
/// below the ephemeral range: a port taken from `bind(0)` and released
/// can be handed to any other test's listener or client at once, one
/// from here cannot.
pub fn free_ports(n: u16) -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..500 {
        let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + (seed.wrapping_add(step.wrapping_mul(16)) % 12_000) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports");
}

/// An address where nothing listens, and nothing else can start to: a
/// socket bound to it without listening is kept open for the life of the
/// test process, so connecting is refused and no other test's listener is
/// given the port.
pub fn dead_addr() -> SocketAddr {
    // SAFETY: plain socket calls on a new descriptor owned here, with
    // pointers to properly sized local structs. The descriptor is never
    // closed on purpose: it holds the port.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, std::ptr::addr_of!(addr).cast(), len);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let named = libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len);
        assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
        SocketAddr::from(([127, 0, 0, 1], u16::from_be(addr.sin_port)))
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type TestClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One request with a 30 s deadline.
pub async fn send(
    client: &TestClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("response in time")
        .expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(&client(), Method::GET, url, headers, b"").await
}

/// Sends raw bytes on a new TCP connection and returns everything read
/// until the server closes or 5 s pass.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// A `wharf echo` backend in its own process, so a test can SIGKILL it.
pub struct EchoProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl EchoProcess {
    /// Starts `wharf echo` on `port` (0 = any free port).
    pub fn start(port: u16) -> EchoProcess {
        let mut child = Command::new(WHARF)
            .args(["echo", "--port", &port.to_string()])
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wharf echo");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read echo address");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected echo output: {line:?}"));
        EchoProcess { child, addr }
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        self.kill();
    }
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
