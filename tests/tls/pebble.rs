//! Pebble, the ACME test server, and its DNS server on free loopback
//! ports, validating on wharf's listeners. Missing binaries fail loudly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::client::{config, free_port, https_get, TestCa};
use crate::support::Wharf;

/// Pebble and its DNS server, on free loopback ports.
pub struct Pebble {
    pub dir: tempfile::TempDir,
    pub dns: Child,
    pub server: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
    pub acme_port: u16,
    pub management_port: u16,
    pub dns_port: u16,
    pub ca: TestCa,
}

pub fn require(binary: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let path = Path::new(dir).join(binary);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{binary} is not installed: these tests need the real ACME test server. \
         Install it with `apt-get install -y pebble` (scripts/test does)"
    );
}

pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Pebble {
    /// Starts Pebble validating on wharf's `http` and `https` ports;
    /// `validity` sets the lifetime of the certificates it issues.
    pub fn start(http: u16, https: u16, validity: Option<Duration>) -> Pebble {
        require("pebble");
        let challtestsrv = require("pebble-challtestsrv");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
        std::fs::write(dir.path().join("pebble.pem"), cert).expect("write");
        std::fs::write(dir.path().join("pebble.key"), key).expect("write");
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write");
        let (acme_port, management_port, dns_port) = (free_port(), free_port(), free_port());
        let mut settings = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("pebble.pem"),
            "privateKey": dir.path().join("pebble.key"),
            "httpPort": http,
            "tlsPort": https,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        });
        if let Some(validity) = validity {
            settings["certificateValidityPeriod"] = validity.as_secs().into();
        }
        let config = serde_json::json!({ "pebble": settings });
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).expect("write");
        let dns = Command::new(challtestsrv)
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv");
        wait_port(dns_port, "pebble-challtestsrv");
        let mut pebble = Pebble {
            dir,
            dns,
            server: None,
            log: Arc::new(Mutex::new(Vec::new())),
            acme_port,
            management_port,
            dns_port,
            ca,
        };
        pebble.launch();
        pebble
    }

    /// Starts the Pebble process (again). Pebble keeps no state between
    /// runs: a new root, no accounts.
    pub fn launch(&mut self) {
        let mut child = Command::new(require("pebble"))
            .arg("-config")
            .arg(self.dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pebble");
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let log = self.log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    log.lock().expect("log").push(line);
                }
            });
        }
        self.server = Some(child);
        wait_port(self.acme_port, "pebble");
        wait_port(self.management_port, "pebble management");
    }

    /// Kills Pebble (its DNS server keeps running).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The `[tls]` lines for ordering from this Pebble.
    pub fn tls(&self, challenge: &str, storage: &Path, extra: &str) -> String {
        format!(
            "mode = \"acme\"\nemail = \"ops@wharf.test\"\ndirectory = \"{}\"\ndirectory_ca = \"{}\"\n\
             challenge = \"{challenge}\"\nstorage = \"{}\"\n{extra}\n",
            self.directory(),
            self.ca_path().display(),
            storage.display()
        )
    }

    /// Pebble's current issuing root (PEM), from its management API.
    pub async fn root(&self) -> String {
        let addr: SocketAddr = ([127, 0, 0, 1], self.management_port).into();
        let (reply, _) = https_get(addr, "localhost", "/roots/0", &self.ca.pem).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.text()
    }

    /// How many Pebble log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}

/// Starts wharf on fresh fixed ports with Pebble validating on them.
pub fn wharf_with_pebble(
    sites: &str,
    challenge: &str,
    storage: &Path,
    extra: &str,
    validity: Option<Duration>,
) -> (Wharf, Pebble, u16, u16) {
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, validity);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config(
        dir.path(),
        http,
        https,
        sites,
        &pebble.tls(challenge, storage, extra),
    );
    let wharf = Wharf::start_with_config(dir, &text);
    (wharf, pebble, http, https)
}
