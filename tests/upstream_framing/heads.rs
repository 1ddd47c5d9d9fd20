//! Answer heads that are malformed, too large, or never finished: a 502,
//! and the connection dropped; and the lenient forms wharf reads the
//! way every client does (a bare LF ending a line).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_or_unfinished_heads_get_a_502_and_the_connection_is_dropped() {
    use Reuse::*;
    use Want::*;
    let huge = format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: 2\r\n\r\nok",
        format!("X-Big: {}\r\n", "x".repeat(1000)).repeat(70)
    );
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: 2\r\n\r\nok",
        (0..120)
            .map(|i| format!("X-F{i}: {i}\r\n"))
            .collect::<String>()
    );
    run(vec![
        Case::new("no answer at all", vec![Step::Close], BadGateway, Never),
        Case::new(
            "the upstream closes mid-head",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Le"), pause(30), Step::Close],
            BadGateway,
            Never,
        ),
        Case::new(
            "a head over 64 KiB",
            vec![send(huge.as_bytes())],
            BadGateway,
            Never,
        ),
        Case::new(
            "more than 100 header fields",
            vec![send(many.as_bytes())],
            BadGateway,
            Never,
        ),
        Case::new(
            "an obs-fold line",
            vec![send(
                b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "an obs-fold hiding a length",
            vec![send(
                b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n Content-Length: 40\r\nContent-Length: 2\r\n\r\nok",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "NUL in a header value",
            vec![send(b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok")],
            BadGateway,
            Never,
        ),
        Case::new(
            "a bare CR inside a header line",
            vec![send(
                b"HTTP/1.1 200 OK\r\nX-Bad: a\rContent-Length: 40\r\nContent-Length: 2\r\n\r\nok",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "a space before the colon",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length : 40\r\n\r\nok")],
            BadGateway,
            Never,
        ),
        Case::new(
            "a status line that is no HTTP",
            vec![send(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok")],
            BadGateway,
            Never,
        ),
        Case::new(
            "a head with bare LF line ends",
            vec![send(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")],
            Whole(200, b"ok"),
            Kept,
        ),
    ])
    .await;
}
