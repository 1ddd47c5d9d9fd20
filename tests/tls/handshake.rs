//! The handshake wharf offers with a certificate from its local CA: the
//! cipher suite it picks, sessions resumed by many clients and across a
//! reload, a client that sends no server name, and requests reaching the
//! app marked as HTTPS.

use std::time::Duration;

use http::StatusCode;

use crate::client::*;
use crate::support::{self, Wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_reach_the_app_as_https() {
    let (_wharf, _storage, https, ca) = proxied_internal_wharf("proxy.internal.test").await;
    let (reply, _) = https_get(https_addr(https), "proxy.internal.test", "/who", &ca).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["headers"]["x-forwarded-proto"], "https", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_use_aes_128_unless_the_client_prefers_chacha_and_resume() {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    use rustls::{CipherSuite, HandshakeKind};

    let host = "fast.internal.test";
    let (_wharf, _storage, https, ca) = proxied_internal_wharf(host).await;
    let addr = https_addr(https);
    let suite = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        tls.get_ref().1.negotiated_cipher_suite().map(|s| s.suite())
    };

    // rustls's own order, like OpenSSL's, lists AES-256-GCM-SHA384 first:
    // wharf chooses AES-128-GCM-SHA256.
    let config = client_config(&ca, &[b"http/1.1"], None);
    let tls = connect_with(addr, host, config.clone()).await.expect("TLS");
    assert_eq!(suite(&tls), Some(CipherSuite::TLS13_AES_128_GCM_SHA256));
    assert_eq!(tls.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
    // The session ticket arrives with the first answer.
    let mut connection = Https::over(tls).await.expect("HTTP/1.1");
    assert_eq!(connection.get(host, "/").await.status, StatusCode::OK);
    drop(connection);
    let tls = connect_with(addr, host, config).await.expect("TLS");
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
    assert_eq!(suite(&tls), Some(CipherSuite::TLS13_AES_128_GCM_SHA256));

    // A client without AES hardware lists ChaCha20 first and gets it.
    let chacha_first = vec![
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_AES_128_GCM_SHA256,
    ];
    let config = client_config(&ca, &[b"http/1.1"], Some(chacha_first));
    let tls = connect_with(addr, host, config).await.expect("TLS");
    assert_eq!(
        suite(&tls),
        Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_clients_resume_however_many_there_are() {
    use rustls::HandshakeKind;

    let host = "many.internal.test";
    let (wharf, _storage, https, ca) = proxied_internal_wharf(host).await;
    let addr = https_addr(https);

    // More clients than a session cache of 256 holds, each with its own
    // ticket store, like browsers on different machines.
    let clients: Vec<_> = (0..300)
        .map(|_| client_config(&ca, &[b"http/1.1"], None))
        .collect();
    for config in &clients {
        let tls = connect_with(addr, host, config.clone()).await.expect("TLS");
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
        // The session ticket arrives with the first answer.
        let mut connection = Https::over(tls).await.expect("HTTP/1.1");
        assert_eq!(connection.get(host, "/").await.status, StatusCode::OK);
    }
    // A reload in between keeps the ticket key.
    wharf.signal("HUP");
    let reloaded = support::eventually(Duration::from_secs(10), || {
        !wharf.log_events("config reloaded").is_empty()
    })
    .await;
    assert!(reloaded, "no reload");
    // The first clients come back after all the others: every one resumes.
    for (n, config) in clients.iter().enumerate() {
        let tls = connect_with(addr, host, config.clone()).await.expect("TLS");
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "client {n} of {} made a full handshake again",
            clients.len()
        );
    }
}

/// wharf with the local CA, proxying every path of `host` to an echo
/// server: the wharf, its storage, its HTTPS port and the CA's PEM.
async fn proxied_internal_wharf(host: &str) -> (Wharf, tempfile::TempDir, u16, String) {
    let echo = support::echo().await;
    let sites = format!(
        "[[site]]\nhosts = [\"{host}\"]\n[[site.route]]\npath = \"/\"\nupstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{echo}\"]\n"
    );
    let (wharf, storage, _, https, ca) = internal_wharf(&sites, "");
    (wharf, storage, https, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_no_server_name_gets_the_first_sites_certificate() {
    // `curl https://127.0.0.1:8443/` sends no SNI; nginx answers it with
    // its default server's certificate, and so does wharf now.
    let sites = format!(
        "{}{}",
        site(&["b.internal.test"], "b"),
        site(&["a.internal.test"], "a")
    );
    let (_wharf, _storage, _, https, ca) = internal_wharf(&sites, "");
    let mut config = (*client_config(&ca, &[b"http/1.1"], None)).clone();
    config.enable_sni = false;
    // Verified as the site whose name sorts first, without naming it.
    let tls = connect_with(
        https_addr(https),
        "a.internal.test",
        std::sync::Arc::new(config),
    )
    .await
    .expect("a handshake without SNI");
    let mut conn = Https::over(tls).await.expect("http/1.1");
    let reply = conn.get("a.internal.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "a");
}
