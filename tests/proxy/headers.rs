//! The headers wharf adds and drops: `X-Forwarded-*` and `Forwarded`
//! believed only from trusted proxies, request ids, and hop-by-hop
//! headers stripped both ways, over HTTP/1.1 and HTTP/2.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_client_cannot_spoof_forwarded_headers() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let reply = get(
        &wharf.url("/who?x=1"),
        &[
            ("host", "shop.example.com"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    let headers = &seen["headers"];
    assert_eq!(headers["host"], "shop.example.com", "Host is kept");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "shop.example.com");
    assert_eq!(seen["path"], "/who");
    assert_eq!(seen["query"], "x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_chain_is_extended_and_real_ip_taken_from_it() {
    let backend = echo().await;
    let wharf = Wharf::start(
        "trusted_proxies = [\"127.0.0.0/8\"]",
        &proxy_to(backend, ""),
    );
    let reply = get(
        &wharf.url("/"),
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(headers["x-real-ip"], "198.51.100.7");
    assert_eq!(headers["x-forwarded-proto"], "https");
    // The access log records the real client, not the proxy.
    let found = eventually(Duration::from_secs(5), || {
        wharf
            .access_log()
            .iter()
            .any(|l| l["client"]["ip"] == "198.51.100.7")
    })
    .await;
    assert!(found, "access log: {:?}", wharf.access_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    // A raw backend that records the request head and answers with
    // hop-by-hop headers of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = listener.local_addr().expect("addr");
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let _ = seen_tx.send(String::from_utf8_lossy(&head).to_lowercase());
        let response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-backend-private\r\n\
                        X-Backend-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n\
                        X-Public: yes\r\n\r\nok";
        stream.write_all(response.as_bytes()).await.expect("write");
    });
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let reply = get(
        &wharf.url("/"),
        &[
            ("connection", "keep-alive, x-client-private"),
            ("x-client-private", "secret"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("te", "gzip"),
            ("x-client-public", "yes"),
        ],
    )
    .await;
    let seen = seen_rx.await.expect("backend saw the request");
    for stripped in [
        "x-client-private",
        "keep-alive:",
        "proxy-authorization",
        "te: gzip",
    ] {
        assert!(
            !seen.contains(stripped),
            "{stripped} reached the backend:\n{seen}"
        );
    }
    assert!(seen.contains("x-client-public: yes"), "{seen}");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-public"), Some("yes"));
    for stripped in ["x-backend-private", "keep-alive", "proxy-authenticate"] {
        assert!(
            reply.header(stripped).is_none(),
            "{stripped} reached the client"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_forwarded_headers_and_ids_are_replaced_once_and_the_rest_kept() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h2 = h2c_client();
    // From an untrusted client: every forwarded header and every
    // malformed id replaced, each sent once (the echo backend shows a
    // repeated header as a list).
    let reply = send(
        &h2,
        Method::GET,
        &wharf.url("/who?x=1"),
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-request-id", "not valid"),
            ("traceparent", "00-nonsense-01"),
            ("tracestate", "vendor=1"),
            ("x-app", "kept"),
        ],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    let headers = &seen["headers"];
    let authority = wharf.addr.to_string();
    assert_eq!(headers["host"], authority.as_str(), "Host from :authority");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], authority.as_str());
    assert_eq!(headers["x-app"], "kept");
    let id = headers["x-request-id"].as_str().expect("one request id");
    assert_ne!(id, "not valid");
    assert_eq!(reply.header("x-request-id"), Some(id), "the id sent back");
    let parent = headers["traceparent"].as_str().expect("one traceparent");
    assert!(parent.starts_with("00-") && parent.len() == 55, "{parent}");
    assert!(
        headers.get("tracestate").is_none(),
        "tracestate of a replaced trace was forwarded"
    );
    assert_eq!(seen["path"], "/who");
    assert_eq!(seen["query"], "x=1");

    // Well-formed ids are kept, with their tracestate.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = send(
        &h2,
        Method::GET,
        &wharf.url("/kept"),
        &[
            ("x-request-id", "client-id-1"),
            ("traceparent", parent),
            ("tracestate", "vendor=1"),
        ],
        b"",
    )
    .await;
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-request-id"], "client-id-1");
    assert_eq!(headers["traceparent"], parent);
    assert_eq!(headers["tracestate"], "vendor=1");

    // From a trusted proxy: the chain is extended, its proto and host kept.
    let trusted = Wharf::start(
        "trusted_proxies = [\"127.0.0.0/8\"]",
        &proxy_to(backend, ""),
    );
    let reply = send(
        &h2,
        Method::GET,
        &trusted.url("/"),
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example.com"),
        ],
        b"",
    )
    .await;
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(headers["x-real-ip"], "198.51.100.7");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "shop.example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rfc_7239_forwarded_header_is_believed_only_from_a_trusted_proxy() {
    let backend = echo().await;
    let spoof = ("forwarded", "for=6.6.6.6;proto=https;host=evil.example");
    // Untrusted: dropped on the fast path, on the fast path's map path
    // (a head with a hop-by-hop field), and over HTTP/2.
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h1 = client();
    let h2 = h2c_client();
    type Case<'a> = (&'a str, &'a TestClient, Vec<(&'a str, &'a str)>);
    let cases: [Case; 3] = [
        ("http/1.1", &h1, vec![spoof]),
        ("http/1.1 with te", &h1, vec![spoof, ("te", "trailers")]),
        ("h2", &h2, vec![spoof]),
    ];
    for (name, client, headers) in &cases {
        let reply = send(client, Method::GET, &wharf.url("/who"), headers, b"").await;
        assert_eq!(reply.status, 200, "{name}");
        let seen = &reply.json()["headers"];
        assert!(
            seen.get("forwarded").is_none(),
            "{name}: an untrusted client's Forwarded reached the app: {seen}"
        );
        assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{name}");
    }
    drop(wharf);

    // From a trusted proxy it is passed on as it came.
    let wharf = Wharf::start(
        "trusted_proxies = [\"127.0.0.0/8\"]",
        &proxy_to(backend, ""),
    );
    for (name, client, headers) in &cases {
        let reply = send(client, Method::GET, &wharf.url("/who"), headers, b"").await;
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(
            reply.json()["headers"]["forwarded"],
            spoof.1,
            "{name}: a trusted proxy's Forwarded"
        );
    }
}
