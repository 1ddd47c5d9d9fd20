//! Reverse proxying against real backends on loopback: forwarded headers,
//! hop-by-hop stripping, WebSockets, streaming bodies, errors.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Method;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn proxy_to(addr: std::net::SocketAddr, extra_upstream: &str) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{addr}\"]\n{extra_upstream}\n"
    )
}

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
async fn websocket_echo_works_through_wharf() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let (mut socket, response) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws", wharf.addr))
            .await
            .expect("websocket handshake through wharf");
    assert_eq!(response.status(), 101);
    for text in ["hello", "through", "wharf"] {
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("echo in time")
            .expect("a message")
            .expect("not an error");
        assert_eq!(echoed.into_text().expect("text").as_str(), text);
    }
    socket.close(None).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_is_proxied_to_http1_backend() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let reply = send(&h2c_client(), Method::GET, &wharf.url("/h2"), &[], b"").await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["path"], "/h2");
    assert_eq!(seen["headers"]["host"], wharf.addr.to_string());
    // A POST without a body is sent with its length, which some servers
    // insist on.
    let reply = send(&h2c_client(), Method::POST, &wharf.url("/empty"), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["content-length"], "0");
}

fn h2c_client() -> TestClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>()
}

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
async fn dead_backend_gives_502_and_slow_backend_504_without_internal_details() {
    let dead = dead_addr();
    let wharf = Wharf::start("", &proxy_to(dead, "connect_timeout = \"1s\""));
    let reply = get(&wharf.url("/"), &[]).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.text(), "502 Bad Gateway\n");
    drop(wharf);

    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, "response_timeout = \"300ms\""));
    let reply = get(&wharf.url("/slow?sleep=3000"), &[]).await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.text(), "504 Gateway Timeout\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_max_body_size_is_refused_with_413() {
    let backend = echo().await;
    let wharf = Wharf::start("max_body_size = \"1KiB\"", &proxy_to(backend, ""));
    let client = client();
    let ok = send(&client, Method::POST, &wharf.url("/"), &[], &[b'a'; 1000]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["body_bytes"], 1000);
    let refused = send(&client, Method::POST, &wharf.url("/"), &[], &[b'a'; 4096]).await;
    assert_eq!(refused.status, 413);
}

/// Streams `total` bytes as a chunked upload without holding them.
fn upload_body(
    total: u64,
) -> impl http_body::Body<Data = bytes::Bytes, Error = std::io::Error> + Send {
    let chunk = bytes::Bytes::from(vec![b'x'; 256 * 1024]);
    let chunks = total / chunk.len() as u64;
    let stream = futures_util::stream::iter(0..chunks)
        .map(move |_| Ok::<_, std::io::Error>(http_body::Frame::data(chunk.clone())));
    http_body_util::StreamBody::new(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_upload_and_download_stream_through_with_low_memory() {
    const TOTAL: u64 = 200 * 1024 * 1024;
    let backend = echo().await;
    let wharf = Wharf::start("max_body_size = \"1GiB\"", &proxy_to(backend, ""));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let request = http::Request::post(wharf.url("/upload"))
        .body(upload_body(TOTAL))
        .expect("request");
    let response = client.request(request).await.expect("upload response");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(seen["body_bytes"], TOTAL);

    // And the other way: a 200 MiB download, read and dropped chunk by chunk.
    let response = support::client()
        .request(
            http::Request::get(wharf.url(&format!("/download?bytes={TOTAL}")))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("download response");
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Some(data) = frame.expect("frame").data_ref() {
            received += data.len() as u64;
        }
    }
    assert_eq!(received, TOTAL);

    let peak_mib = wharf.peak_rss_kib() / 1024;
    println!("wharf peak RSS after 200 MiB up and down: {peak_mib} MiB");
    assert!(
        peak_mib < 64,
        "wharf held the body in memory: peak RSS {peak_mib} MiB"
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

/// A backend that answers each request with the reply its path names,
/// written in the pieces given (each piece its own write, 20 ms apart),
/// and counts the connections it accepted. After a reply marked `close`
/// it closes the connection.
async fn scripted_backend(
    replies: Vec<(&'static str, Vec<&'static [u8]>, bool)>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let replies = std::sync::Arc::new(replies);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let replies = replies.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                    let Some((_, pieces, close)) = replies.iter().find(|(p, _, _)| *p == path)
                    else {
                        return;
                    };
                    for piece in pieces {
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if *close {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_answers_are_relayed_whatever_the_upstream_framing_and_reuse_follows_it() {
    use std::sync::atomic::Ordering;
    let (backend, accepted) = scripted_backend(vec![
        (
            "/length",
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-App: 1\r\n",
                b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\r\nhello",
                b" world",
            ],
            false,
        ),
        (
            "/chunked",
            vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                b"lo\r\n1;ext=1\r\n \r\n5\r\nworld\r\n3\r\nabc\r\n",
                b"0\r\nX-Trailer: t\r\n\r\n",
            ],
            false,
        ),
        (
            "/early-hints",
            vec![
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
            ],
            false,
        ),
        ("/empty", vec![b"HTTP/1.1 204 No Content\r\n\r\n"], false),
        (
            "/head",
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"],
            false,
        ),
        (
            "/until-close",
            vec![b"HTTP/1.1 200 OK\r\n\r\nall of ", b"this"],
            true,
        ),
        (
            "/short",
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"],
            true,
        ),
        ("/garbage", vec![b"SPDY/3 200 OK\r\n\r\n"], true),
    ])
    .await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h2 = h2c_client();

    // Kept-alive framings: all of them over one upstream connection.
    for round in 0..2 {
        let reply = send(&h2, Method::GET, &wharf.url("/length"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "hello world");
        assert_eq!(reply.header("x-app"), Some("1"));
        assert_eq!(
            reply.header("x-hop"),
            None,
            "a header Connection names was relayed"
        );
        assert!(reply.header("x-request-id").is_some());

        let reply = send(&h2, Method::GET, &wharf.url("/chunked"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "hello worldabc", "chunks decoded");

        let reply = send(&h2, Method::GET, &wharf.url("/early-hints"), &[], b"").await;
        assert_eq!(reply.status, 404, "the final answer after a 1xx");
        assert_eq!(reply.text(), "nope");

        let reply = send(&h2, Method::GET, &wharf.url("/empty"), &[], b"").await;
        assert_eq!(reply.status, 204);
        assert!(reply.body.is_empty());

        let reply = send(&h2, Method::HEAD, &wharf.url("/head"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.body.is_empty(),
            "HEAD: no body whatever the length says"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "round {round}: a kept-alive answer did not leave its connection for the next"
        );
    }

    // The trailer fields of a chunked answer reach the HTTP/2 client.
    let request = http::Request::get(wharf.url("/chunked"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = h2.request(request).await.expect("head of /chunked");
    let collected = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body of /chunked");
    let trailer = collected
        .trailers()
        .and_then(|trailers| trailers.get("x-trailer"))
        .map(|value| value.as_bytes().to_vec());
    assert_eq!(trailer.as_deref(), Some(&b"t"[..]), "trailers lost");
    assert_eq!(&collected.to_bytes()[..], b"hello worldabc");

    // A body until close: relayed whole, and that connection is not reused.
    let reply = send(&h2, Method::GET, &wharf.url("/until-close"), &[], b"").await;
    assert_eq!(reply.text(), "all of this");
    let reply = send(&h2, Method::GET, &wharf.url("/length"), &[], b"").await;
    assert_eq!(reply.text(), "hello world");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // A body cut short fails the stream, not wharf; the next request
    // is served.
    let request = http::Request::get(wharf.url("/short"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = h2.request(request).await.expect("head of /short");
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert!(body.is_err(), "a truncated body arrived as complete");

    let reply = send(&h2, Method::GET, &wharf.url("/garbage"), &[], b"").await;
    assert_eq!(reply.status, 502);
    let reply = send(&h2, Method::GET, &wharf.url("/chunked"), &[], b"").await;
    assert_eq!(reply.text(), "hello worldabc");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_200_mib_download_streams_through_with_low_memory() {
    // The body is read from the upstream socket only as the HTTP/2 client
    // takes it (h1::client), never held whole.
    const TOTAL: u64 = 200 * 1024 * 1024;
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let request = http::Request::get(wharf.url(&format!("/download?bytes={TOTAL}")))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = h2c_client()
        .request(request)
        .await
        .expect("download response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Some(data) = frame.expect("frame").data_ref() {
            received += data.len() as u64;
        }
    }
    assert_eq!(received, TOTAL);
    let peak_mib = wharf.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 64,
        "wharf held the body in memory: peak RSS {peak_mib} MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_small_and_large_request_bodies_arrive_whole_with_their_length() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h2 = h2c_client();
    // Up to 8 KiB a held body goes with its head in one write (h1::client);
    // beyond, through hyper's client. Both arrive whole, with their length.
    for size in [1usize, 20, 8 * 1024, 8 * 1024 + 1, 60 * 1024] {
        let body = vec![b'x'; size];
        for method in [Method::POST, Method::PUT] {
            let reply = send(&h2, method.clone(), &wharf.url("/upload"), &[], &body).await;
            assert_eq!(reply.status, 200, "{method} of {size} bytes");
            let seen = reply.json();
            assert_eq!(seen["method"], method.as_str());
            assert_eq!(seen["body_bytes"], size as u64, "{method} of {size} bytes");
            assert_eq!(
                seen["headers"]["content-length"],
                size.to_string(),
                "{method} of {size} bytes"
            );
        }
    }
    // A GET that says its empty body's length keeps saying it; one that
    // does not, does not.
    let reply = send(
        &h2,
        Method::GET,
        &wharf.url("/len"),
        &[("content-length", "0")],
        b"",
    )
    .await;
    assert_eq!(reply.json()["headers"]["content-length"], "0");
    let reply = send(&h2, Method::GET, &wharf.url("/len"), &[], b"").await;
    assert!(reply.json()["headers"].get("content-length").is_none());
}

/// A backend that answers every request with a 100-byte body: `/stall`
/// sends 10 bytes of it and then nothing, keeping the connection open;
/// `/trickle` sends it 10 bytes at a time, 300 ms apart.
async fn stalling_backend() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let trickle = buf.starts_with(b"GET /trickle") || buf.starts_with(b"POST /trickle");
                let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                for _ in 0..10 {
                    if stream.write_all(&[b'x'; 10]).await.is_err() {
                        return;
                    }
                    if !trickle {
                        // Holds the connection open, sending nothing more.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_upstream_stops_sending_is_cut_off_after_response_timeout_on_every_path() {
    let backend = stalling_backend().await;
    let wharf = Wharf::start("", &proxy_to(backend, "response_timeout = \"1s\""));
    let h1 = client();
    let h2 = h2c_client();
    // HTTP/1.1 (the fast path), HTTP/2 without a body (the bare socket
    // path), HTTP/2 with a 64 KiB upload (hyper's client).
    let cases: [(&str, &TestClient, Method, usize); 3] = [
        ("http/1.1", &h1, Method::GET, 0),
        ("h2 get", &h2, Method::GET, 0),
        ("h2 upload", &h2, Method::POST, 64 * 1024),
    ];
    for (name, client, method, upload) in cases {
        for path in ["/stall", "/trickle"] {
            let request = http::Request::builder()
                .method(method.clone())
                .uri(wharf.url(path))
                .body(http_body_util::Full::new(bytes::Bytes::from(vec![
                    b'u';
                    upload
                ])))
                .expect("request");
            let started = std::time::Instant::now();
            let outcome = tokio::time::timeout(Duration::from_secs(20), async {
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                assert_eq!(response.status(), 200, "{name} {path}: {:?}", wharf.logs());
                http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .map(|body| body.to_bytes().len())
                    .map_err(|e| e.to_string())
            })
            .await;
            let took = started.elapsed();
            let outcome =
                outcome.unwrap_or_else(|_| panic!("{name} {path}: still waiting after 20 s"));
            if path == "/stall" {
                assert!(
                    outcome.is_err(),
                    "{name}: a stalled body ended well: {outcome:?}"
                );
                assert!(
                    took >= Duration::from_millis(900) && took < Duration::from_secs(5),
                    "{name}: a stalled body was cut off after {took:?}, not about 1 s"
                );
            } else {
                // 3 s in all, but never 1 s without a byte: it is whole.
                assert_eq!(outcome, Ok(100), "{name}: a slow but steady body");
                assert!(took >= Duration::from_secs(2), "{name}: {took:?}");
            }
        }
    }
    assert!(
        wharf.logs_contain("upstream body stalled"),
        "the cut-off is logged"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_204_reaches_clients_without_a_length_over_http1_and_http2() {
    // An app that (wrongly) sends a length with its 204, and a 304 whose
    // length names the representation (allowed).
    let (backend, _) = scripted_backend(vec![
        (
            "/gone",
            vec![b"HTTP/1.1 204 No Content\r\nContent-Length: 422\r\nX-App: 1\r\n\r\n"],
            false,
        ),
        (
            "/same",
            vec![b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"a\"\r\n\r\n"],
            false,
        ),
    ])
    .await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h1 = client();
    let h2 = h2c_client();
    for (name, client) in [("http/1.1", &h1), ("h2", &h2)] {
        for _ in 0..2 {
            let reply = send(client, Method::GET, &wharf.url("/gone"), &[], b"").await;
            assert_eq!(reply.status, 204, "{name}");
            assert_eq!(reply.header("content-length"), None, "{name}");
            assert_eq!(reply.header("x-app"), Some("1"), "{name}");
            assert!(reply.body.is_empty(), "{name}");
            let reply = send(client, Method::GET, &wharf.url("/same"), &[], b"").await;
            assert_eq!(reply.status, 304, "{name}");
            assert_eq!(reply.header("etag"), Some("\"a\""), "{name}");
        }
    }
    // A 204 to an upload (hyper's client on the way up).
    let upload = vec![b'u'; 64 * 1024];
    let reply = send(&h2, Method::PUT, &wharf.url("/gone"), &[], &upload).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("content-length"), None);
}
