//! Upstream keep-alive and its failures: a connection the server will
//! close is never reused, and an idle one the server closed is replaced
//! without an error and closed on wharf's side without new traffic.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_connection_the_server_will_close_is_never_reused() {
    // The server says `Connection: close` but closes only later, so the
    // socket still looks open when the next request comes.
    let (backend, accepted) = scripted(
        |path| {
            format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{path}",
                path.len()
            )
            .into_bytes()
        },
        Close::After(Duration::from_secs(2)),
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for path in ["/one", "/two", "/three"] {
        let reply = tokio::time::timeout(
            Duration::from_secs(1),
            send(&h2, http::Method::GET, &wharf.url(path), &[], b""),
        )
        .await
        .expect("answered at once, not after the server's close");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), path);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_upstream_connection_the_server_closed_is_replaced_without_an_error() {
    // The backend drops every connection 100 ms after answering, like a
    // short keep-alive timeout.
    let (backend, accepted) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::After(Duration::from_millis(100)),
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..3 {
        conn.send(&get("/")).await;
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200, "no 502 for a stale pooled connection");
        assert_eq!(response.body, b"ok");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// Sockets on this machine connected to `port` on 127.0.0.1 that the
/// other side closed and this side has not (TCP state `CLOSE_WAIT`).
fn close_wait_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"08")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_upstream_connection_the_server_closed_is_closed_without_new_traffic() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::After(Duration::from_millis(100)),
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    // One request over HTTP/1.1 (the fast path) and one over HTTP/2 (the
    // general path): both leave a kept connection the server then closes.
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let reply = send(&h2, http::Method::GET, &wharf.url("/h2"), &[], b"").await;
    assert_eq!(reply.status, 200);
    // The backend closes both 100 ms after answering. No request comes;
    // wharf still closes its side within a few seconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        eventually(Duration::from_secs(10), || close_wait_to(backend.port())
            == 0)
        .await,
        "{} upstream sockets left in CLOSE_WAIT",
        close_wait_to(backend.port())
    );
}
