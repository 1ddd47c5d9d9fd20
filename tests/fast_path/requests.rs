//! What clients send on a connection: pipelined requests, `Connection:
//! close`, a request that moves the connection to the full stack, a body
//! over 64 KiB, and a request without exactly one Host.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    let mut burst = Vec::new();
    for path in ["/first", "/second", "/third"] {
        burst.extend_from_slice(&get(path));
    }
    conn.send(&burst).await;
    for path in ["/first", "/second", "/third"] {
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200);
        let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        assert_eq!(seen["path"], path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_from_the_client_is_honoured() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        .await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(conn.closed().await, "wharf closes after answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_moves_to_the_full_stack_when_a_request_needs_it() {
    let backend = echo().await;
    let dir = tempfile::tempdir().expect("dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("a.txt"), "a static file ".repeat(50)).expect("write");
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\
         [[site.route]]\n  path = \"/files/\"\n  static = \"{}\"\n\n\
         [upstream.app]\nservers = [\"{backend}\"]\n",
        files.display()
    );
    let wharf = Wharf::start_in(dir, "", &body);
    let mut conn = Conn::open(wharf.addr).await;
    // Relayed on the fast path...
    conn.send(&get("/api/one")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    // ...then a static file with compression asked for: the full stack.
    conn.send(b"GET /files/a.txt HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    // ...and proxying goes on on the same connection.
    conn.send(&get("/api/two")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(seen["path"], "/api/two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_over_64_kib_streams_to_the_backend_intact() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    conn.send(&request).await;
    let response = conn.response("POST").await;
    assert_eq!(response.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(seen["body_bytes"], body.len());
    // A small body right after on the same connection.
    conn.send(b"POST /small HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let response = conn.response("POST").await;
    let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(seen["path"], "/small");
    assert_eq!(seen["body_bytes"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_1_request_without_one_host_is_a_400_not_a_guess() {
    // A site for any host, so a request without Host would otherwise be
    // served.
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let cases: [(&[u8], u16); 5] = [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            400,
        ),
        (
            b"GET / HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            400,
        ),
        // HTTP/1.0 needs none; an absolute-form target names the host.
        (b"GET / HTTP/1.0\r\n\r\n", 200),
        (b"GET http://app.test/ HTTP/1.1\r\n\r\n", 200),
    ];
    for (request, status) in cases {
        let mut conn = Conn::open(wharf.addr).await;
        conn.send(request).await;
        let response = conn.response("GET").await;
        assert_eq!(
            response.status,
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}
