//! Upstream connections kept and reused: across HTTP/1.1 and HTTP/2
//! clients, and replaced when the upstream has closed a kept one.

use super::*;

/// The upstream connection a request came over, as the echo backend saw it.
fn upstream_peer(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["peer"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http1_requests_share_kept_upstream_connections() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let (h2, h1) = (h2c_client(), client());
    let mut peers = std::collections::BTreeSet::new();
    // HTTP/2 (the general path, h1::client), then HTTP/1.1 (the fast
    // path), then HTTP/2 again: one kept connection carries them all. A
    // connection the general path used stays hot for it for a second, and
    // is a bare socket again, which either path takes, after that.
    for (client, label) in [(&h2, "h2"), (&h1, "h1"), (&h2, "h2-again")] {
        for i in 0..5 {
            let url = wharf.url(&format!("/shared/{label}/{i}"));
            let reply = send(client, Method::GET, &url, &[], b"").await;
            peers.insert(upstream_peer(&reply));
        }
        assert_eq!(
            peers.len(),
            1,
            "after {label}: upstream connections {peers:?}"
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
    }
    // A burst of 8 streams needs up to 8 connections; a second burst
    // reuses them, so both together never need more than 8 (plus the one
    // kept from before).
    let burst = || {
        futures_util::future::join_all((0..8).map(|i| {
            let h2 = h2.clone();
            let url = wharf.url(&format!("/burst/{i}"));
            async move { upstream_peer(&send(&h2, Method::POST, &url, &[], &[b'x'; 70_000]).await) }
        }))
    };
    let first: std::collections::BTreeSet<String> = burst().await.into_iter().collect();
    let second: std::collections::BTreeSet<String> = burst().await.into_iter().collect();
    let all: std::collections::BTreeSet<&String> =
        peers.iter().chain(&first).chain(&second).collect();
    assert!(
        all.len() <= 9,
        "a second burst opened new connections: {first:?} then {second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_kept_alive_and_reused() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let client = client();
    let mut peers = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let reply = send(&client, Method::GET, &wharf.url("/reuse"), &[], b"").await;
        assert_eq!(reply.status, 200);
        peers.insert(
            reply.json()["peer"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    // Sequential requests share one upstream connection.
    assert_eq!(peers.len(), 1, "upstream connections: {peers:?}");
    // HEAD and 204-style empty bodies give the connection back too.
    for _ in 0..5 {
        let reply = send(&client, Method::HEAD, &wharf.url("/reuse"), &[], b"").await;
        assert_eq!(reply.status, 200);
    }
    let reply = send(&client, Method::GET, &wharf.url("/reuse"), &[], b"").await;
    peers.insert(
        reply.json()["peer"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    assert_eq!(peers.len(), 1, "upstream connections: {peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_kept_connection_the_upstream_closed_is_replaced_for_a_get() {
    use std::sync::atomic::Ordering;
    // The backend answers with a length and no `Connection: close`, then
    // closes 20 ms later: the connection is back in wharf's pool by then,
    // and the next request takes it before the close arrives. A GET that
    // finds it closed without a byte of answer is sent again on a new
    // connection; the client never sees the failure.
    let (backend, accepted) = scripted_backend(vec![(
        "/once",
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        true,
    )])
    .await;
    let wharf = Wharf::start("", &proxy_to(backend, "retries = 0"));
    let h2 = h2c_client();
    for i in 0..5 {
        let reply = send(&h2, Method::GET, &wharf.url("/once"), &[], b"").await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
        assert_eq!(reply.text(), "ok");
    }
    assert!(accepted.load(Ordering::SeqCst) >= 5);
}
