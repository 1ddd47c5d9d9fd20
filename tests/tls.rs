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
    let leaf = &stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("certificates")[0];
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
        self.sender.ready().await.expect("connection still open");
        let response =
            tokio::time::timeout(Duration::from_secs(10), self.sender.send_request(request))
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
async fn https_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    roots: &str,
) -> (support::Reply, String) {
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

/// Time between wharf's first "listening" log line and the last `message` one.
fn since_listening(wharf: &Wharf, message: &str) -> Duration {
    let at = |event: &serde_json::Value| {
        humantime::parse_rfc3339(event["timestamp"].as_str().expect("timestamp")).expect("RFC 3339")
    };
    let listening = at(&wharf.log_events("listening")[0]);
    let last = at(wharf.log_events(message).last().expect("logged"));
    last.duration_since(listening).unwrap_or_default()
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
    let (wharf, pebble, http, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "hsts = \"max-age=31536000\"",
        None,
    );
    wait_for_log(&wharf, "certificate obtained", 2, Duration::from_secs(60)).await;
    eprintln!(
        "http-01: both certificates served {:?} after wharf started listening",
        since_listening(&wharf, "certificate obtained")
    );
    for event in wharf.log_events("certificate obtained") {
        eprintln!(
            "http-01: {} issued in {} ms",
            event["hosts"], event["elapsed_ms"]
        );
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
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000")
        );
    }
    // One certificate per site, with its exact hosts as names.
    let a = connect(https_addr(https), "www.a.wharf.test", &root, &[])
        .await
        .expect("tls");
    let b = connect(https_addr(https), "b.wharf.test", &root, &[])
        .await
        .expect("tls");
    assert_ne!(serial(&a), serial(&b));
    // A wildcard host has no certificate under ACME: that handshake fails.
    assert!(connect(https_addr(https), "x.b.wharf.test", &root, &[])
        .await
        .is_err());
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    let stored = walk(storage.path());
    assert!(
        stored.iter().any(|p| p.ends_with("account.json")),
        "{stored:?}"
    );
    assert!(
        stored.iter().any(|p| p.ends_with("a.wharf.test.key")),
        "{stored:?}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_certificate_is_issued_in_the_handshake() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["alpn.wharf.test", "www.alpn.wharf.test"], "alpn site");
    let (wharf, pebble, http, https) =
        wharf_with_pebble(&sites, "tls-alpn-01", storage.path(), "", None);
    // HTTP serves the site while the certificate is being ordered.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/"),
        &[("host", "alpn.wharf.test")],
    )
    .await;
    assert!(
        reply.status == StatusCode::OK || reply.status == StatusCode::PERMANENT_REDIRECT,
        "{}",
        reply.status
    );
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let event = &wharf.log_events("certificate obtained")[0];
    eprintln!(
        "tls-alpn-01: issued in {} ms, served {:?} after wharf started listening",
        event["elapsed_ms"],
        since_listening(&wharf, "certificate obtained")
    );
    let root = pebble.root().await;
    for host in ["alpn.wharf.test", "www.alpn.wharf.test"] {
        let (reply, _) = https_get(https_addr(https), host, "/", &root).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "alpn site");
    }
    // HTTP/2 by ALPN on the same listener.
    let tls = connect(
        https_addr(https),
        "alpn.wharf.test",
        &root,
        &[b"h2", b"http/1.1"],
    )
    .await
    .expect("tls");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Validation went over TLS-ALPN-01, never HTTP.
    assert_eq!(pebble.count("http-01"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_is_served_live_while_a_keep_alive_connection_keeps_working() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["renew.wharf.test"], "renewing");
    // 40 s certificates renewed when less than 30 s remain: due 10 s in.
    let (wharf, pebble, _, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "renew_before = \"30s\"",
        Some(Duration::from_secs(40)),
    );
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let mut kept = Https::open(https_addr(https), "renew.wharf.test", &root)
        .await
        .expect("connect");
    let first = kept.serial.clone();
    // Requests keep flowing on one connection across the swap.
    let mut sent = 0;
    let started = Instant::now();
    while wharf.log_events("certificate renewed").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no renewal; logs:\n{}",
            wharf.logs.lock().expect("logs").join("\n")
        );
        let reply = kept.get("renew.wharf.test", "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "renewing");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let event = &wharf.log_events("certificate renewed")[0];
    eprintln!(
        "renewal: done in {} ms, {:?} after the keep-alive connection opened ({sent} requests on it so far)",
        event["elapsed_ms"],
        started.elapsed()
    );
    // The old connection carries on with its certificate...
    for _ in 0..3 {
        let reply = kept.get("renew.wharf.test", "/").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(kept.serial, first);
    // ...while new connections get the new one, no restart.
    let (reply, second) = https_get(https_addr(https), "renew.wharf.test", "/", &root).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(
        second, first,
        "a new handshake gets the renewed certificate"
    );
    assert_eq!(wharf.log_events("config reloaded").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_down_at_renewal_keeps_the_old_certificate_and_renews_once_it_is_back() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["down.wharf.test"], "still here");
    let (wharf, mut pebble, _, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "renew_before = \"30s\"",
        Some(Duration::from_secs(40)),
    );
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let old_root = pebble.root().await;
    let (_, first) = https_get(https_addr(https), "down.wharf.test", "/", &old_root).await;

    pebble.stop();
    let failed = "certificate renewal failed; the current certificate keeps serving";
    wait_for_log(&wharf, failed, 1, Duration::from_secs(40)).await;
    // Stay down a while: retries back off instead of hammering the CA.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failures = wharf.log_events(failed);
    eprintln!(
        "CA down: {} failed attempts in ~6 s: retry_in_ms {:?}",
        failures.len(),
        failures
            .iter()
            .map(|e| e["retry_in_ms"].clone())
            .collect::<Vec<_>>()
    );
    assert!(failures.len() <= 5, "{} attempts in 6 s", failures.len());
    assert!(failures
        .iter()
        .all(|e| e["error"].as_str().is_some_and(|s| !s.is_empty())));
    let (reply, during) = https_get(https_addr(https), "down.wharf.test", "/", &old_root).await;
    assert_eq!(reply.text(), "still here");
    assert_eq!(during, first, "the old certificate keeps being served");

    // Pebble comes back (with a new root and no memory of the account).
    let back = Instant::now();
    pebble.launch();
    wait_for_log(&wharf, "certificate renewed", 1, Duration::from_secs(30)).await;
    eprintln!(
        "CA back: renewed {:?} after Pebble restarted",
        back.elapsed()
    );
    let new_root = pebble.root().await;
    let (reply, after) = https_get(https_addr(https), "down.wharf.test", "/", &new_root).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(after, first);
    // The new Pebble did not know the account: its key was registered again.
    assert_eq!(
        wharf
            .log_events(
                "the ACME server does not know the stored account; registering its key again"
            )
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reuses_the_stored_account_and_certificate_without_a_new_order() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["again.wharf.test"], "again");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let tls = pebble.tls("http-01", storage.path(), "");
    let text = config(storage.path(), http, https, &sites, &tls);
    let first = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(&first, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let (_, before) = https_get(https_addr(https), "again.wharf.test", "/", &root).await;
    let account = walk(storage.path())
        .into_iter()
        .find(|p| p.ends_with("account.json"))
        .expect("stored account");
    let account_text = std::fs::read_to_string(&account).expect("read");
    let (orders, accounts) = (pebble.count("/order-plz"), pebble.count("/sign-me-up"));
    assert!(
        orders >= 1 && accounts >= 1,
        "pebble log: {:?}",
        pebble.log.lock().expect("log")
    );
    drop(first);

    let second = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(
        &second,
        "using the stored certificate",
        1,
        Duration::from_secs(10),
    )
    .await;
    let (reply, after) = https_get(https_addr(https), "again.wharf.test", "/", &root).await;
    assert_eq!(reply.text(), "again");
    assert_eq!(after, before, "the stored certificate is served");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pebble.count("/order-plz"), orders, "no new order");
    assert_eq!(pebble.count("/sign-me-up"), accounts, "no new account");
    assert_eq!(
        std::fs::read_to_string(&account).expect("read"),
        account_text
    );
    assert!(second.log_events("certificate obtained").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_fails_the_handshake_cleanly_until_issued_while_http_keeps_working() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write");
    let (http, https) = (free_port(), free_port());
    // An ACME server that is not there: no certificate for a long while.
    let tls = format!(
        "mode = \"acme\"\ndirectory = \"https://127.0.0.1:{}/dir\"\ndirectory_ca = \"{}\"\nstorage = \"{}\"\nhsts = \"max-age=60\"\n",
        free_port(),
        dir.path().join("ca.pem").display(),
        dir.path().join("storage").display()
    );
    let text = config(
        dir.path(),
        http,
        https,
        &site(&["wait.wharf.test"], "plain"),
        &tls,
    );
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(
        &wharf,
        "certificate order failed; HTTPS for these hosts fails until it succeeds",
        1,
        Duration::from_secs(20),
    )
    .await;
    let error = connect(https_addr(https), "wait.wharf.test", &ca.pem, &[])
        .await
        .expect_err("no certificate yet");
    eprintln!("handshake before issue: {error}");
    // HTTP is served, not redirected to an HTTPS that cannot answer yet.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/page?x=1"),
        &[("host", "wait.wharf.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "plain");
    assert!(reply.header("strict-transport-security").is_none());
}

/// A wharf with `mode = "internal"` and its local CA (PEM).
fn internal_wharf(sites: &str, extra: &str) -> (Wharf, tempfile::TempDir, u16, u16, String) {
    let storage = tempfile::tempdir().expect("tempdir");
    let (http, https) = (free_port(), free_port());
    let tls = format!(
        "mode = \"internal\"\nstorage = \"{}\"\n{extra}\n",
        storage.path().display()
    );
    let text = config(storage.path(), http, https, sites, &tls);
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    let ca = std::fs::read_to_string(storage.path().join("internal/ca.pem")).expect("local CA");
    (wharf, storage, http, https, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_mode_certificates_verify_against_the_local_ca() {
    let sites = format!(
        "{}{}",
        site(&["app.internal.test", "*.apps.internal.test"], "internal"),
        site(&["other.internal.test"], "other")
    );
    let (wharf, storage, _, https, ca) = internal_wharf(&sites, "");
    // `wharf run` says where the CA is, so users can trust it.
    let ca_path = storage.path().join("internal/ca.pem");
    assert!(
        wharf.logs_contain(&format!("signed by the local CA {}", ca_path.display())),
        "{:?}",
        wharf.logs.lock().expect("logs")
    );
    for (host, body) in [
        ("app.internal.test", "internal"),
        ("x.apps.internal.test", "internal"),
        ("other.internal.test", "other"),
    ] {
        let (reply, _) = https_get(https_addr(https), host, "/", &ca).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert_eq!(reply.text(), body, "{host}");
    }
    // Another CA does not vouch for it.
    let stranger = TestCa::new();
    assert!(
        connect(https_addr(https), "app.internal.test", &stranger.pem, &[])
            .await
            .is_err()
    );
    // The CA key is private and reused on restart.
    use std::os::unix::fs::PermissionsExt;
    let key = storage.path().join("internal/ca.key");
    let mode = std::fs::metadata(&key)
        .expect("ca.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&wharf.config_path).expect("config");
    drop(wharf);
    let again = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    let (reply, _) = https_get(https_addr(https), "app.internal.test", "/", &ca).await;
    assert_eq!(reply.status, StatusCode::OK, "same CA after a restart");
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirects_to_https_keeping_path_and_query_but_not_the_challenge_path() {
    let sites = format!(
        "{}[[site]]\nhosts = [\"10.1.2.3\"]\n[[site.route]]\npath = \"/\"\nrespond = \"by ip\"\n",
        site(&["r.internal.test"], "app")
    );
    let (_wharf, storage, http, https, ca) =
        internal_wharf(&sites, "hsts = \"max-age=31536000; includeSubDomains\"");
    let url = |path: &str| format!("http://127.0.0.1:{http}{path}");
    for path in ["/", "/a/b?x=1&y=%20z", "/deep/path/?"] {
        let reply = support::get(&url(path), &[("host", "r.internal.test")]).await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(
            reply.header("location"),
            Some(format!("https://r.internal.test:{https}{path}").as_str()),
        );
        assert!(
            reply.header("strict-transport-security").is_none(),
            "no HSTS over HTTP"
        );
    }
    // The ACME challenge path is never redirected (an unknown token is
    // routed as usual).
    let reply = support::get(
        &url("/.well-known/acme-challenge/some-token"),
        &[("host", "r.internal.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "app");
    // A host without a certificate stays on HTTP.
    let reply = support::get(&url("/"), &[("host", "10.1.2.3")]).await;
    assert_eq!(reply.text(), "by ip");
    // Redirects are in the access log like any response.
    let logged = support::eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(storage.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["http"]["response"]["status_code"] == 308 && v["url"]["path"] == "/a/b")
    })
    .await;
    assert!(logged, "the redirect is in the access log");
    // HTTPS answers with HSTS.
    let (reply, _) = https_get(https_addr(https), "r.internal.test", "/a/b?x=1", &ca).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_http_false_keeps_serving_http() {
    let (_wharf, _storage, http, _, _) = internal_wharf(
        &site(&["stay.internal.test"], "stay"),
        "redirect_http = false",
    );
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/x"),
        &[("host", "stay.internal.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_reloads_the_pair_and_keeps_the_old_one_when_the_new_is_bad() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("site.pem"), dir.path().join("site.key"));
    let write_pair = |pair: &(String, String)| {
        std::fs::write(&cert, &pair.0).expect("write");
        std::fs::write(&key, &pair.1).expect("write");
    };
    write_pair(&ca.issue(&["files.test", "www.files.test"]));
    let (http, https) = (free_port(), free_port());
    let tls = format!(
        "mode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let text = config(
        dir.path(),
        http,
        https,
        &site(&["files.test", "www.files.test"], "files"),
        &tls,
    );
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    let (reply, first) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_eq!(reply.text(), "files");
    let mut kept = Https::open(https_addr(https), "www.files.test", &ca.pem)
        .await
        .expect("open");

    // A new pair, then SIGHUP: served at once, no restart.
    write_pair(&ca.issue(&["files.test", "www.files.test"]));
    wharf.signal("HUP");
    wait_for_log(&wharf, "config reloaded", 1, Duration::from_secs(10)).await;
    let (_, second) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_ne!(second, first, "the new pair is served");
    assert_eq!(kept.get("www.files.test", "/").await.status, StatusCode::OK);

    // A key that does not match: the reload is rejected, the old pair serves.
    let other = ca.issue(&["files.test"]);
    std::fs::write(&key, &other.1).expect("write");
    wharf.signal("HUP");
    wait_for_log(
        &wharf,
        "config reload rejected; the previous config keeps serving",
        1,
        Duration::from_secs(10),
    )
    .await;
    assert!(wharf.logs_contain("does not belong to the certificate"));
    let (reply, third) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(third, second, "the old pair keeps serving");
    // Garbage in the certificate file: rejected the same way.
    std::fs::write(&cert, "not a certificate").expect("write");
    wharf.signal("HUP");
    wait_for_log(
        &wharf,
        "config reload rejected; the previous config keeps serving",
        2,
        Duration::from_secs(10),
    )
    .await;
    let (_, fourth) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_eq!(fourth, second);
}

#[test]
fn check_reports_every_tls_problem_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, _) = ca.issue(&["c.test"]);
    let (_, wrong_key) = ca.issue(&["c.test"]);
    std::fs::write(dir.path().join("c.pem"), cert).expect("write");
    std::fs::write(dir.path().join("c.key"), wrong_key).expect("write");
    std::fs::write(dir.path().join("file"), "").expect("write");
    let run = |text: &str| {
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, text).expect("write");
        let out = Command::new(support::WHARF)
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("wharf check");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let head =
        "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\nadmin = \"off\"\n";
    let (ok, out) = run(&format!(
        "{head}[tls]\nmode = \"files\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
    ));
    assert!(!ok);
    assert!(
        out.contains("wharf.toml:7:8: tls.cert:")
            && out.contains("does not belong to the certificate"),
        "{out}"
    );
    let (ok, out) = run(&format!(
        "{head}[tls]\nmode = \"acme\"\nemail = \"ops at example.com\"\nstorage = \"file/state\"\ndirectory_ca = \"nope.pem\"\n"
    ));
    assert!(!ok);
    for needle in [
        ":7:9: tls.email: \"ops at example.com\" is not an email address",
        ":8:11: tls.storage:",
        "is not writable",
        ":9:16: tls.directory_ca: cannot read",
    ] {
        assert!(out.contains(needle), "{needle} not in:\n{out}");
    }
    let (ok, out) = run(&format!(
        "{head}[tls]\nmode = \"internal\"\nstorage = \"state\"\n"
    ));
    assert!(ok, "{out}");
    assert!(out.contains("is valid"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_orders_only_the_new_sites_certificate_and_keeps_serving_the_others() {
    let storage = tempfile::tempdir().expect("tempdir");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let tls = pebble.tls("http-01", storage.path(), "");
    let one = site(&["one.wharf.test"], "one");
    let text = config(storage.path(), http, https, &one, &tls);
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let (_, before) = https_get(https_addr(https), "one.wharf.test", "/", &root).await;
    let orders = pebble.count("/order-plz");

    let two = format!("{one}{}", site(&["two.wharf.test"], "two"));
    std::fs::write(
        &wharf.config_path,
        config(storage.path(), http, https, &two, &tls),
    )
    .expect("rewrite");
    wharf.signal("HUP");
    wait_for_log(&wharf, "config reloaded", 1, Duration::from_secs(10)).await;
    wait_for_log(&wharf, "certificate obtained", 2, Duration::from_secs(60)).await;
    let (reply, _) = https_get(https_addr(https), "two.wharf.test", "/", &root).await;
    assert_eq!(reply.text(), "two");
    let (_, after) = https_get(https_addr(https), "one.wharf.test", "/", &root).await;
    assert_eq!(after, before, "the unchanged site keeps its certificate");
    assert!(pebble.count("/order-plz") > orders, "a new order");
    // Only the new site was ordered: the unchanged one was neither ordered
    // again nor renewed.
    let obtained: Vec<String> = wharf
        .log_events("certificate obtained")
        .iter()
        .map(|e| e["hosts"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(obtained, ["one.wharf.test", "two.wharf.test"]);
    assert!(wharf.log_events("certificate renewed").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_reach_the_app_as_https() {
    let echo = support::echo().await;
    let sites = format!(
        "[[site]]\nhosts = [\"proxy.internal.test\"]\n[[site.route]]\npath = \"/\"\nupstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{echo}\"]\n"
    );
    let (_wharf, _storage, _, https, ca) = internal_wharf(&sites, "");
    let (reply, _) = https_get(https_addr(https), "proxy.internal.test", "/who", &ca).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["headers"]["x-forwarded-proto"], "https", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_the_local_ca_to_acme_on_reload_orders_at_once_and_serves_meanwhile() {
    let storage = tempfile::tempdir().expect("tempdir");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let sites = site(&["switch.wharf.test"], "switch");
    let internal = format!(
        "mode = \"internal\"\nstorage = \"{}\"\n",
        storage.path().display()
    );
    let wharf = Wharf::start_with_config(
        tempfile::tempdir().expect("tempdir"),
        &config(storage.path(), http, https, &sites, &internal),
    );
    let local_ca =
        std::fs::read_to_string(storage.path().join("internal/ca.pem")).expect("local CA");
    let (reply, _) = https_get(https_addr(https), "switch.wharf.test", "/", &local_ca).await;
    assert_eq!(reply.status, StatusCode::OK);

    let acme = pebble.tls("tls-alpn-01", storage.path(), "");
    std::fs::write(
        &wharf.config_path,
        config(storage.path(), http, https, &sites, &acme),
    )
    .expect("rewrite");
    wharf.signal("HUP");
    wait_for_log(&wharf, "config reloaded", 1, Duration::from_secs(10)).await;
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let (reply, _) = https_get(https_addr(https), "switch.wharf.test", "/", &root).await;
    assert_eq!(reply.text(), "switch");
}
