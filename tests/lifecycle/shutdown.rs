//! Graceful shutdown on SIGTERM: in-flight requests finish, idle
//! keep-alive connections close at once, and `shutdown_timeout` bounds
//! the wait for stuck ones.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_in_flight_request_finish_then_exits_0() {
    let backend = echo().await;
    let mut wharf = Wharf::start("shutdown_timeout = \"10s\"", &proxy_site(backend));
    let url = wharf.url("/slow?sleep=1500");
    let slow = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    wharf.signal("TERM");
    // New connections are refused soon after the signal.
    let addr = wharf.addr;
    let refused = eventually(Duration::from_secs(3), || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    assert!(refused, "still accepting after SIGTERM");
    let reply = slow.await.expect("slow request task");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["query"], "sleep=1500");
    let status = wharf
        .wait_exit(Duration::from_secs(10))
        .expect("wharf exited");
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() >= Duration::from_millis(1000),
        "exited before the request finished"
    );
}

/// Idle keep-alive connections (one that was answered, one that never
/// sent a byte) are closed as soon as shutdown begins: wharf exits well
/// before its shutdown timeout, and both clients read the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = echo().await;
    let mut wharf = Wharf::start("shutdown_timeout = \"20s\"", &proxy_site(backend));
    let mut answered = tokio::net::TcpStream::connect(wharf.addr)
        .await
        .expect("connect");
    answered
        .write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 4096];
    let n = answered.read(&mut head).await.expect("answer");
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );
    let mut silent = tokio::net::TcpStream::connect(wharf.addr)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    wharf.signal("TERM");
    for (name, stream) in [("answered", &mut answered), ("silent", &mut silent)] {
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the {name} idle connection was not closed");
    }
    let status = wharf
        .wait_exit(Duration::from_secs(10))
        .expect("wharf exited");
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "idle connections held shutdown for {:?}",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_bounds_the_wait_for_stuck_requests() {
    let backend = echo().await;
    let mut wharf = Wharf::start("shutdown_timeout = \"500ms\"", &proxy_site(backend));
    let url = wharf.url("/stuck?sleep=20000");
    let _stuck = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    wharf.signal("TERM");
    let status = wharf
        .wait_exit(Duration::from_secs(10))
        .expect("wharf exited");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5));
}
