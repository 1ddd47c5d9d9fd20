//! Answers whose length is ambiguous, invalid, or wrong: two lengths,
//! a length beside chunked, lengths that are no number, a body longer
//! than its length, and bodies that run until the upstream closes.

use super::*;

/// A whole second answer, as an upstream that miscounts would leave on
/// its connection for the next request.
const SMUGGLED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL";

fn answer(fields: &str, body: &str) -> Step {
    send(format!("HTTP/1.1 200 OK\r\n{fields}\r\n{body}").as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ambiguous_lengths_get_a_502_and_the_connection_is_dropped() {
    use Reuse::*;
    use Want::*;
    let chunked = "3\r\nabc\r\n0\r\n\r\n";
    run(vec![
        Case::new(
            "Content-Length beside Transfer-Encoding: chunked",
            vec![answer(
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "Transfer-Encoding: chunked before Content-Length",
            vec![answer(
                "Transfer-Encoding: chunked\r\nContent-Length: 14\r\n",
                chunked,
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "two differing Content-Lengths",
            vec![answer("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd")],
            BadGateway,
            Never,
        ),
        Case::new(
            "a list of lengths",
            vec![answer("Content-Length: 3, 3\r\n", "abc")],
            BadGateway,
            Never,
        ),
        Case::new(
            "the same Content-Length twice",
            vec![answer("Content-Length: 3\r\nContent-Length: 3\r\n", "abc")],
            Whole(200, b"abc"),
            Kept,
        ),
        Case::new(
            "Content-Length +3",
            vec![answer("Content-Length: +3\r\n", "abc")],
            BadGateway,
            Never,
        ),
        Case::new(
            "Content-Length -1",
            vec![answer("Content-Length: -1\r\n", "abc")],
            BadGateway,
            Never,
        ),
        Case::new(
            "Content-Length abc",
            vec![answer("Content-Length: abc\r\n", "abc")],
            BadGateway,
            Never,
        ),
        Case::new(
            "Content-Length 0x3",
            vec![answer("Content-Length: 0x3\r\n", "abc")],
            BadGateway,
            Never,
        ),
        Case::new(
            "Content-Length beyond 64 bits",
            vec![answer("Content-Length: 18446744073709551619\r\n", "abc")],
            BadGateway,
            Never,
        ),
        Case::new(
            "an empty Content-Length",
            vec![answer("Content-Length: \r\n", "abc")],
            BadGateway,
            Never,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_longer_than_their_length_never_become_the_next_answer() {
    use Reuse::*;
    use Want::*;
    run(vec![
        Case::new(
            "a second answer in the same write as the body",
            vec![
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                send(SMUGGLED),
            ],
            Whole(200, b"hello"),
            Never,
        ),
        Case::new(
            "a second answer written after the body",
            vec![
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                pause(50),
                send(SMUGGLED),
            ],
            Whole(200, b"hello"),
            Never,
        ),
        Case::new(
            "a body longer than its length, in pieces",
            vec![
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"),
                pause(30),
                send(b"lo, and then some"),
            ],
            Whole(200, b"hello"),
            Never,
        ),
        Case::new(
            "a body just as long as its length (the control)",
            vec![
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"),
                pause(30),
                send(b"lo"),
            ],
            Whole(200, b"hello"),
            Kept,
        ),
        Case::new(
            "a body shorter than its length",
            vec![
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello"),
                pause(30),
                Step::Close,
            ],
            Cut(200),
            Never,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_without_a_length_run_until_close_and_end_the_connection() {
    use Reuse::*;
    use Want::*;
    run(vec![
        Case::new(
            "neither a length nor chunked on a keep-alive connection",
            vec![answer("", "until"), pause(30), send(b" close"), Step::Close],
            Whole(200, b"until close"),
            Never,
        ),
        Case::new(
            "neither a length nor chunked, and the upstream keeps the connection",
            vec![answer("", "until"), pause(4000)],
            Cut(200),
            Never,
        ),
        // A coding wharf does not decode would reach the client still
        // coded, its header (hop-by-hop) gone: a 502, as nginx answers.
        Case::new(
            "Transfer-Encoding: gzip",
            vec![
                answer("Transfer-Encoding: gzip\r\n", "coded"),
                pause(30),
                send(b" bytes"),
                Step::Close,
            ],
            BadGateway,
            Never,
        ),
        Case::new(
            "Transfer-Encoding: chunked, gzip",
            vec![
                answer(
                    "Transfer-Encoding: chunked, gzip\r\n",
                    "3\r\nabc\r\n0\r\n\r\n",
                ),
                Step::Close,
            ],
            BadGateway,
            Never,
        ),
        Case::new(
            "Transfer-Encoding: gzip, chunked",
            vec![answer(
                "Transfer-Encoding: gzip, chunked\r\n",
                "5\r\ncoded\r\n0\r\n\r\n",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "Transfer-Encoding: chunked twice",
            vec![answer(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "5\r\ncoded\r\n0\r\n\r\n",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "HTTP/1.0 with a length",
            vec![send(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")],
            Whole(200, b"hello"),
            Never,
        ),
        Case::new(
            "Connection: close with a length",
            vec![answer(
                "Content-Length: 5\r\nConnection: close\r\n",
                "hello",
            )],
            Whole(200, b"hello"),
            Never,
        ),
    ])
    .await;
}
