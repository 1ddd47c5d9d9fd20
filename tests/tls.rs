//! HTTPS: certificates from the real ACME test server Pebble (HTTP-01 and
//! TLS-ALPN-01), renewal served live, the CA going away and coming back,
//! restart without a new order, the HTTP→HTTPS redirect, HSTS, the local
//! CA, files mode hot reload, and `wharf check` on `[tls]`.
//!
//! Pebble (Debian package `pebble`, installed by scripts/test) validates on
//! wharf's listeners: each test picks free ports for wharf's HTTP and HTTPS
//! listeners and writes them into Pebble's config as httpPort/tlsPort.
//! `pebble-challtestsrv` is Pebble's DNS server and answers 127.0.0.1 for
//! every name. Pebble's own HTTPS certificate is made here with rcgen.
//! Tests that need Pebble fail, loudly, when it is not installed.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use support::Wharf;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

// ---------------------------------------------------------------- helpers

/// A port nothing listens on right now.
fn free_port() -> u16 {
    support::dead_addr().port()
}

/// A CA made for one test: signs Pebble's HTTPS certificate and files-mode pairs.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wharf test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signed");
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A (chain, key) PEM pair for `names` (DNS names or IP addresses).
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

fn der(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

/// A TLS connection to `addr` for `host`, verified against `roots` (PEM).
async fn connect(
    addr: SocketAddr,
    host: &str,
    roots: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut store = rustls::RootCertStore::empty();
    for cert in der(roots) {
        store.add(cert).expect("root");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(host.to_string()).expect("server name");
    tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// Serial (hex) of the leaf certificate a connection got.
fn serial(stream: &TlsStream<TcpStream>) -> String {
    let leaf = &stream.get_ref().1.peer_certificates().expect("certificates")[0];
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).expect("x509");
    cert.raw_serial_as_string()
}

/// An HTTP/1.1 keep-alive connection over TLS.
struct Https {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    serial: String,
}

impl Https {
    async fn open(addr: SocketAddr, host: &str, roots: &str) -> std::io::Result<Https> {
        let tls = connect(addr, host, roots, &[b"http/1.1"]).await?;
        let serial = serial(&tls);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Https { sender, serial })
    }

    async fn get(&mut self, host: &str, path: &str) -> support::Reply {
        let request = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(10), self.sender.send_request(request))
            .await
            .expect("answer in time")
            .expect("answer");
        let (parts, body) = response.into_parts();
        support::Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes(),
        }
    }
}

/// One request on a new connection.
async fn https_get(addr: SocketAddr, host: &str, path: &str, roots: &str) -> (support::Reply, String) {
    let mut connection = Https::open(addr, host, roots)
        .await
        .unwrap_or_else(|e| panic!("HTTPS to {host} at {addr}: {e}"));
    let reply = connection.get(host, path).await;
    (reply, connection.serial)
}

/// Waits until wharf logged `message` `count` times; returns how long it took.
async fn wait_for_log(wharf: &Wharf, message: &str, count: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    let ok = support::eventually(timeout, || wharf.log_events(message).len() >= count).await;
    assert!(
        ok,
        "no {count}× {message:?} within {timeout:?}; logs:\n{}",
        wharf.logs.lock().expect("logs").join("\n")
    );
    start.elapsed()
}

/// The config of a wharf on fixed ports with `sites` and a `[tls]` body.
fn config(dir: &Path, http: u16, https: u16, sites: &str, tls: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{http}\"]\nhttps = [\"127.0.0.1:{https}\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [log]\nformat = \"json\"\naccess = \"{}\"\nlevel = \"info\"\n\n{sites}\n[tls]\n{tls}\n",
        dir.join("access.log").display()
    )
}

fn site(hosts: &[&str], body: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!(
        "[[site]]\nhosts = [{}]\n[[site.route]]\npath = \"/\"\nrespond = \"{body}\"\n\n",
        hosts.join(", ")
    )
}

// ---------------------------------------------------------------- Pebble

/// Pebble and its DNS server, on free loopback ports.
struct Pebble {
    dir: tempfile::TempDir,
    dns: Child,
    server: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    acme_port: u16,
    management_port: u16,
    dns_port: u16,
    ca: TestCa,
}

fn require(binary: &str) -> PathBuf {
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

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Pebble {
    /// Starts Pebble validating on wharf's `http` and `https` ports;
    /// `validity` sets the lifetime of the certificates it issues.
    fn start(http: u16, https: u16, validity: Option<Duration>) -> Pebble {
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
    fn launch(&mut self) {
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
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().expect("log").push(line);
                }
            });
        }
        self.server = Some(child);
        wait_port(self.acme_port, "pebble");
        wait_port(self.management_port, "pebble management");
    }

    /// Kills Pebble (its DNS server keeps running).
    fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The `[tls]` lines for ordering from this Pebble.
    fn tls(&self, challenge: &str, storage: &Path, extra: &str) -> String {
        format!(
            "mode = \"acme\"\nemail = \"ops@wharf.test\"\ndirectory = \"{}\"\ndirectory_ca = \"{}\"\n\
             challenge = \"{challenge}\"\nstorage = \"{}\"\n{extra}\n",
            self.directory(),
            self.ca_path().display(),
            storage.display()
        )
    }

    /// Pebble's current issuing root (PEM), from its management API.
    async fn root(&self) -> String {
        let addr: SocketAddr = ([127, 0, 0, 1], self.management_port).into();
        let (reply, _) = https_get(addr, "localhost", "/roots/0", &self.ca.pem).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.text()
    }

    /// How many Pebble log lines contain `needle`.
    fn count(&self, needle: &str) -> usize {
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
fn wharf_with_pebble(
    sites: &str,
    challenge: &str,
    storage: &Path,
    extra: &str,
    validity: Option<Duration>,
) -> (Wharf, Pebble, u16, u16) {
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, validity);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config(dir.path(), http, https, sites, &pebble.tls(challenge, storage, extra));
    let wharf = Wharf::start_with_config(dir, &text);
    (wharf, pebble, http, https)
}

fn https_addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_certificates_are_issued_per_site_and_verify_against_pebbles_root() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = format!(
        "{}{}",
        site(&["a.wharf.test", "www.a.wharf.test"], "site a"),
        site(&["b.wharf.test", "*.b.wharf.test"], "site b")
    );
    let started = Instant::now();
    let (wharf, pebble, http, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "hsts = \"max-age=31536000\"",
        None,
    );
    wait_for_log(&wharf, "certificate obtained", 2, Duration::from_secs(60)).await;
    eprintln!(
        "http-01: two certificates issued {:?} after wharf started",
        started.elapsed()
    );
    for event in wharf.log_events("certificate obtained") {
        eprintln!("http-01: {} issued in {} ms", event["hosts"], event["elapsed_ms"]);
    }
    let root = pebble.root().await;
    for (host, body) in [
        ("a.wharf.test", "site a"),
        ("www.a.wharf.test", "site a"),
        ("b.wharf.test", "site b"),
    ] {
        let (reply, _) = https_get(https_addr(https), host, "/hello", &root).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert_eq!(reply.text(), body, "{host}");
        assert_eq!(reply.header("strict-transport-security"), Some("max-age=31536000"));
    }
    // One certificate per site, with its exact hosts as names.
    let a = connect(https_addr(https), "www.a.wharf.test", &root, &[]).await.expect("tls");
    let b = connect(https_addr(https), "b.wharf.test", &root, &[]).await.expect("tls");
    assert_ne!(serial(&a), serial(&b));
    // A wildcard host has no certificate under ACME: that handshake fails.
    assert!(connect(https_addr(https), "x.b.wharf.test", &root, &[]).await.is_err());
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    let stored = walk(storage.path());
    assert!(stored.iter().any(|p| p.ends_with("account.json")), "{stored:?}");
    assert!(stored.iter().any(|p| p.ends_with("a.wharf.test.key")), "{stored:?}");
    for path in stored {
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
    }
    // HTTP still answers, redirecting hosts that have a certificate.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/x/y?q=1&r=2"),
        &[("host", "a.wharf.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        reply.header("location"),
        Some(format!("https://a.wharf.test:{https}/x/y?q=1&r=2").as_str())
    );
    assert!(reply.header("strict-transport-security").is_none());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
