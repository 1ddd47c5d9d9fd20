//! Malformed chunked bodies: a bad or overflowing chunk size, data not
//! ended by CRLF, a line ended otherwise than by CRLF, trailers with
//! fields no trailer may carry, and an upstream that closes mid-chunk. A
//! body wharf cannot follow is cut short where the client sees it, and
//! its connection is dropped.

use super::*;

/// The head and a first good chunk, sent before the case's bad bytes so
/// that the answer has started on both paths.
const START: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";

/// How long the backend waits between `START` and a malformed chunk.
/// Bytes that reach wharf in one read with the head are refused before
/// anything is sent (a 502, as the case "with the head" below wants); only
/// bytes that come after the start was relayed cut the answer short. On a
/// busy machine (the whole suite at once on two cores) a read of wharf's
/// has come more than 30 ms late, so the wait is long enough that the
/// case tests what it says.
const AFTER_START: u64 = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_chunked_bodies_are_cut_short_and_the_connection_dropped() {
    use Reuse::*;
    use Want::*;
    let bad = |name, rest: &[u8]| {
        Case::new(
            name,
            vec![send(START), pause(AFTER_START), send(rest)],
            Cut(200),
            Never,
        )
    };
    run(vec![
        bad(
            "a chunk size that is no number",
            b"zz\r\nhello\r\n0\r\n\r\n",
        ),
        bad("a negative chunk size", b"-5\r\nhello\r\n0\r\n\r\n"),
        bad(
            "a chunk size beyond 64 bits",
            b"10000000000000000\r\nhello\r\n0\r\n\r\n",
        ),
        bad("chunk data not ended by CRLF", b"3\r\nabcXY0\r\n\r\n"),
        bad("chunk data ended by a bare LF", b"3\r\nabc\n0\r\n\r\n"),
        bad(
            "a chunk size line ended by a bare LF",
            b"3\nabc\r\n0\r\n\r\n",
        ),
        bad("a last chunk line ended by a bare LF", b"0\n\r\n"),
        bad("a trailer line ended by a bare LF", b"0\r\nX-Sum: 1\n\r\n"),
        bad(
            "a chunk extension longer than 4 KiB",
            format!("3;{}\r\nabc\r\n0\r\n\r\n", "x".repeat(5000)).as_bytes(),
        ),
        Case::new(
            "a first chunk size that is no number, with the head",
            vec![send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            )],
            // Nothing of it was sent yet on the fast path; the general
            // path has handed its head on, and resets the stream before or
            // after the head's frame has left.
            BadGateway,
            Never,
        )
        .general(Reset(200)),
        Case::new(
            "the upstream closes mid-chunk",
            vec![send(START), send(b"5\r\nwor"), pause(30), Step::Close],
            Cut(200),
            Never,
        ),
        Case::new(
            "the upstream closes between chunks",
            vec![send(START), pause(30), Step::Close],
            Cut(200),
            Never,
        ),
        Case::new(
            "the upstream closes inside the trailers",
            vec![
                send(START),
                send(b"0\r\nX-Sum: 1\r\n"),
                pause(30),
                Step::Close,
            ],
            Cut(200),
            Never,
        ),
        Case::new(
            "a whole answer after the last chunk",
            vec![
                send(START),
                send(b"0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"),
            ],
            Whole(200, b"hello"),
            Never,
        ),
        Case::new(
            "trailers with fields no trailer may carry",
            vec![
                send(START),
                send(
                    b"0\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\nHost: elsewhere\r\n\
                      Connection: close\r\nX-Sum: 1\r\n\r\n",
                ),
            ],
            Whole(200, b"hello"),
            Kept,
        ),
        Case::new(
            "a chunked body as it should be (the control)",
            vec![send(START), pause(30), send(b"0\r\n\r\n")],
            Whole(200, b"hello"),
            Kept,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailer_fields_no_trailer_may_carry_are_not_passed_to_http2_clients() {
    let backend = Backend::start(vec![
        send(START),
        send(
            b"0\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\nHost: elsewhere\r\n\
              Connection: close\r\nX-Sum: 1\r\n\r\n",
        ),
    ])
    .await;
    let wharf = start_wharf(&[("trailers".to_string(), backend.addr)]);
    let seen = client::h2(&wharf.url("/trailers/case"), http::Method::GET, b"").await;
    let H2::Whole {
        status,
        body,
        trailers,
        ..
    } = &seen
    else {
        panic!("got {seen:?}");
    };
    assert_eq!((*status, &body[..]), (200, &b"hello"[..]));
    let trailers = trailers.as_ref().expect("trailers");
    assert_eq!(trailers.get("x-sum").map(|v| v.as_bytes()), Some(&b"1"[..]));
    for name in ["content-length", "transfer-encoding", "host", "connection"] {
        assert!(
            !trailers.contains_key(name),
            "{name} passed on: {trailers:?}"
        );
    }
}
