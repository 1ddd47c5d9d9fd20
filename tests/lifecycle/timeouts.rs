//! Client connections that stay idle: closed after `idle_timeout`, and
//! cut off when the headers never finish.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keepalive_connections_are_closed_after_idle_timeout() {
    let wharf = Wharf::start("idle_timeout = \"300ms\"", &respond_site("hi"));
    let started = Instant::now();
    let answer = raw(wharf.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "idle connection was not closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let wharf = Wharf::start("header_timeout = \"300ms\"", &respond_site("hi"));
    let started = Instant::now();
    let answer = raw(wharf.addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert!(!answer.contains("200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "slow client was not cut off"
    );
}
