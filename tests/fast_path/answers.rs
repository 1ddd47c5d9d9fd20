//! Every way an upstream frames its answer, relayed: chunked with
//! trailers, until close, without a date, to a HEAD, after 1xx answers,
//! and malformed (a 502 that closes nothing else).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_with_trailers_is_relayed_and_both_connections_are_reused() {
    let (backend, accepted) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;note=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..3 {
        conn.send(&get("/chunked")).await;
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello world");
        assert!(response.header("x-request-id").is_some());
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection carried all three requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_ends_at_close_reaches_the_client_chunked_on_a_connection_that_stays_open() {
    let (backend, accepted) = scripted(
        |path| {
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close {path}")
                .into_bytes()
        },
        Close::AtOnce,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for path in ["/one", "/two"] {
        conn.send(&get(path)).await;
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            format!("until close {path}")
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "a closed upstream connection is never reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_without_a_date_gets_one() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    let response = conn.response("GET").await;
    let date = response.header("date").expect("a Date header");
    let parsed = httpdate::parse_http_date(date).expect("an HTTP date");
    let age = std::time::SystemTime::now()
        .duration_since(parsed)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "Date {date} is now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_carry_no_body_and_the_connection_goes_on() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..2 {
        conn.send(b"HEAD /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await;
        let response = conn.response("HEAD").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-length"), Some("1000"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_responses_before_the_answer_are_skipped() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_upstream_answer_is_a_502_and_closes_nothing_else() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 502);
    assert_eq!(String::from_utf8_lossy(&response.body), "502 Bad Gateway\n");
    // The client connection is still usable.
    conn.send(&get("/")).await;
    assert_eq!(conn.response("GET").await.status, 502);
}
