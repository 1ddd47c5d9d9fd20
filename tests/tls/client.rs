//! Test-side helpers: a throw-away CA, a verifying TLS client with
//! keep-alive, waiting on wharf's log, and config text for fixed ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::support::{self, Wharf};

/// A port nothing listens on right now, for a listener.
pub fn free_port() -> u16 {
    support::free_ports(1)
}

/// A CA made for one test: signs Pebble's HTTPS certificate and files-mode pairs.
pub struct TestCa {
    pub issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
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
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

pub fn der(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

/// A TLS connection to `addr` for `host`, verified against `roots` (PEM).
pub async fn connect(
    addr: SocketAddr,
    host: &str,
    roots: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    connect_with(addr, host, client_config(roots, alpn, None)).await
}

/// A client config trusting `roots` (PEM); `suites` replaces rustls's
/// cipher suites (and their order) when given.
pub fn client_config(
    roots: &str,
    alpn: &[&[u8]],
    suites: Option<Vec<rustls::SupportedCipherSuite>>,
) -> Arc<rustls::ClientConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut store = rustls::RootCertStore::empty();
    for cert in der(roots) {
        store.add(cert).expect("root");
    }
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = suites {
        provider.cipher_suites = suites;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` for `host` with `config`; connections made
/// with the same config share its session cache, so they can resume.
pub async fn connect_with(
    addr: SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(host.to_string()).expect("server name");
    tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// Serial (hex) of the leaf certificate a connection got.
pub fn serial(stream: &TlsStream<TcpStream>) -> String {
    let leaf = &stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("certificates")[0];
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).expect("x509");
    cert.raw_serial_as_string()
}

/// An HTTP/1.1 keep-alive connection over TLS.
pub struct Https {
    pub sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    pub serial: String,
}

impl Https {
    pub async fn open(addr: SocketAddr, host: &str, roots: &str) -> std::io::Result<Https> {
        let tls = connect(addr, host, roots, &[b"http/1.1"]).await?;
        Https::over(tls).await
    }

    /// HTTP/1.1 over a TLS connection made with `connect` or `connect_with`.
    pub async fn over(tls: TlsStream<TcpStream>) -> std::io::Result<Https> {
        let serial = serial(&tls);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Https { sender, serial })
    }

    pub async fn get(&mut self, host: &str, path: &str) -> support::Reply {
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
pub async fn https_get(
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
pub async fn wait_for_log(
    wharf: &Wharf,
    message: &str,
    count: usize,
    timeout: Duration,
) -> Duration {
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
pub fn since_listening(wharf: &Wharf, message: &str) -> Duration {
    let at = |event: &serde_json::Value| {
        humantime::parse_rfc3339(event["timestamp"].as_str().expect("timestamp")).expect("RFC 3339")
    };
    let listening = at(&wharf.log_events("listening")[0]);
    let last = at(wharf.log_events(message).last().expect("logged"));
    last.duration_since(listening).unwrap_or_default()
}

/// The config of a wharf on fixed ports with `sites` and a `[tls]` body.
pub fn config(dir: &Path, http: u16, https: u16, sites: &str, tls: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{http}\"]\nhttps = [\"127.0.0.1:{https}\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [log]\nformat = \"json\"\naccess = \"{}\"\nlevel = \"info\"\n\n{sites}\n[tls]\n{tls}\n",
        dir.join("access.log").display()
    )
}

pub fn site(hosts: &[&str], body: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!(
        "[[site]]\nhosts = [{}]\n[[site.route]]\npath = \"/\"\nrespond = \"{body}\"\n\n",
        hosts.join(", ")
    )
}

pub fn https_addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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

pub fn internal_wharf(sites: &str, extra: &str) -> (Wharf, tempfile::TempDir, u16, u16, String) {
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
