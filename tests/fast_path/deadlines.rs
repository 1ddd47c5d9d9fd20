//! The connection's deadlines: idle and response deadlines on one
//! connection in either order, and a request body that stops coming.

use super::*;

/// A site proxying to `addr` with `upstream` settings added.
fn proxy_with(addr: SocketAddr, upstream: &str) -> String {
    format!("{}{upstream}\n", proxy_to(addr))
}

/// The connection's idle and response deadlines share one timer (src/h1/):
/// each must still hold on its own, on one connection, whichever is longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_response_deadlines_hold_on_one_connection_in_either_order() {
    let backend = echo().await;

    // The response deadline shorter than the idle one.
    let wharf = Wharf::start(
        "idle_timeout = \"1500ms\"",
        &proxy_with(backend, "response_timeout = \"300ms\""),
    );
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let asked = std::time::Instant::now();
    conn.send(&get("/slow?sleep=3000")).await;
    assert_eq!(conn.response("GET").await.status, 504);
    // Well before the idle deadline: the response deadline was set.
    assert!(
        asked.elapsed() < Duration::from_millis(1000),
        "{:?}",
        asked.elapsed()
    );
    // The connection goes on, and the fired timer serves the next request.
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    // Idle longer than the response deadline, shorter than the idle one.
    tokio::time::sleep(Duration::from_millis(450)).await;
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let idle = std::time::Instant::now();
    assert!(
        conn.closed().await,
        "an idle connection was kept past idle_timeout"
    );
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4),
        "closed after {waited:?}, idle_timeout is 1500ms"
    );
    drop(wharf);

    // The idle deadline shorter than a slow answer: it must not cut it.
    let wharf = Wharf::start(
        "idle_timeout = \"300ms\"",
        &proxy_with(backend, "response_timeout = \"5s\""),
    );
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    conn.send(&get("/slow?sleep=900")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let idle = std::time::Instant::now();
    assert!(conn.closed().await);
    assert!(
        idle.elapsed() < Duration::from_secs(2),
        "{:?}",
        idle.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_coming_gets_a_408_and_is_logged_as_one() {
    let backend = echo().await;
    let wharf = Wharf::start("idle_timeout = \"1s\"", &proxy_to(backend));
    let requests: [&[u8]; 2] = [
        // Held whole on the fast path.
        b"POST /held HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nabc",
        // Chunked: hyper's server and the general path.
        b"POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nabc",
    ];
    for request in requests {
        let started = Instant::now();
        let mut conn = Conn::open(wharf.addr).await;
        conn.send(request).await;
        let response = conn.response("POST").await;
        let path = String::from_utf8_lossy(&request[5..13]).into_owned();
        assert_eq!(response.status, 408, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
        assert!(conn.closed().await, "{path}: the connection stays open");
    }
    let logged = eventually(Duration::from_secs(5), || {
        let log = wharf.access_log();
        ["/held", "/chunked"].iter().all(|path| {
            log.iter().any(|line| {
                line["url"]["path"] == *path && line["http"]["response"]["status_code"] == 408
            })
        })
    })
    .await;
    assert!(logged, "{:?}", wharf.access_log());
}
