//! Informational answers before the final one: skipped, however many and
//! however written, the final answer relayed and the connection kept; a
//! 101 nobody asked for is a 502, and the connection is dropped.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn informational_answers_are_skipped_and_an_unasked_101_is_a_502() {
    use Reuse::*;
    use Want::*;
    let last = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    run(vec![
        Case::new(
            "a 100 Continue first",
            vec![send(b"HTTP/1.1 100 Continue\r\n\r\n"), send(last)],
            Whole(200, b"ok"),
            Kept,
        ),
        Case::new(
            "a 103 with headers first",
            vec![
                send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>\r\n\r\n"),
                pause(30),
                send(last),
            ],
            Whole(200, b"ok"),
            Kept,
        ),
        Case::new(
            "several 1xx, in one write with the final answer",
            vec![send(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
                  HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
                  HTTP/1.1 103 Early Hints\r\nLink: </b.css>\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            )],
            Whole(200, b"ok"),
            Kept,
        ),
        Case::new(
            "a 1xx cut in two writes",
            vec![send(b"HTTP/1.1 103 Early"), pause(30), send(b" Hints\r\n\r\n"), send(last)],
            Whole(200, b"ok"),
            Kept,
        ),
        Case::new(
            "a 1xx with a length and a body",
            vec![send(b"HTTP/1.1 100 Continue\r\nContent-Length: 4\r\n\r\nEVIL"), send(last)],
            BadGateway,
            Never,
        ),
        Case::new(
            "a 101 to a request that asked for no upgrade",
            vec![
                send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
                send(b"\x81\x05hello"),
            ],
            BadGateway,
            Never,
        ),
        Case::new(
            "a 101 after a 100",
            vec![send(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n",
            )],
            BadGateway,
            Never,
        ),
        Case::new(
            "a 1xx, then the upstream closes",
            vec![send(b"HTTP/1.1 103 Early Hints\r\n\r\n"), pause(30), Step::Close],
            BadGateway,
            Never,
        ),
    ])
    .await;
}
