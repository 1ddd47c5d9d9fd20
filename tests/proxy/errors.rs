//! Backends that fail: a dead one gives 502, a slow one 504, neither with
//! internal details, and a body the upstream stops sending is cut off
//! after `response_timeout` on every path.

use super::*;

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
