//! Answers that have no body whatever their headers say (204, 304, an
//! answer to HEAD), sent with one anyway: the bytes never reach the
//! client, and never become the next answer.

use super::*;

/// What an upstream that sends a body where none belongs leaves behind.
const STRAY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_after_a_bodiless_answer_are_not_relayed_and_end_the_connection() {
    use Reuse::*;
    use Want::*;
    run(vec![
        Case::new(
            "a 204, then a whole answer",
            vec![send(b"HTTP/1.1 204 No Content\r\n\r\n"), send(STRAY)],
            Whole(204, b""),
            Never,
        ),
        Case::new(
            "a 204 with a length and that many bytes",
            vec![send(b"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nEVIL")],
            Whole(204, b""),
            Never,
        ),
        Case::new(
            "a 204 with a chunked body",
            vec![send(
                b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n",
            )],
            Whole(204, b""),
            Never,
        ),
        Case::new(
            "a 304 with its representation's length and a body",
            vec![send(
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\nETag: \"a\"\r\n\r\nEVIL",
            )],
            Whole(304, b""),
            Never,
        ),
        Case::new(
            "a 304 with a body written later",
            vec![
                send(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n"),
                pause(50),
                send(STRAY),
            ],
            Whole(304, b""),
            Never,
        ),
        Case::new(
            "an answer to HEAD with the body",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")],
            Whole(200, b""),
            Never,
        )
        .method("HEAD"),
        Case::new(
            "an answer to HEAD with the body written later",
            vec![
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"),
                pause(50),
                send(b"EVIL"),
            ],
            Whole(200, b""),
            Never,
        )
        .method("HEAD"),
        Case::new(
            "an answer to HEAD with a chunked body",
            vec![send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n",
            )],
            Whole(200, b""),
            Never,
        )
        .method("HEAD"),
        Case::new(
            "a 204 as it should be (the control)",
            vec![send(b"HTTP/1.1 204 No Content\r\n\r\n")],
            Whole(204, b""),
            Kept,
        ),
        Case::new(
            "a 304 as it should be (the control)",
            vec![send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\n")],
            Whole(304, b""),
            Kept,
        ),
        Case::new(
            "an answer to HEAD as it should be (the control)",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")],
            Whole(200, b""),
            Kept,
        )
        .method("HEAD"),
    ])
    .await;
}
