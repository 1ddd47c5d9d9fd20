//! What clients send: well-formed requests with one to three mutations,
//! broken chunked bodies that must not eject a healthy server, and
//! connections that send garbage, HTTP/2 prefaces or a TLS ClientHello.

use super::conn::{probe, Seen};
use super::mutate::*;
use super::*;

/// Heads (and bodies) a well-behaved client sends.
const REQUESTS: &[&[u8]] = &[
    b"GET /get?x=1&y=%20 HTTP/1.1\r\nHost: fuzz.test\r\nUser-Agent: robustness\r\nAccept: */*\r\nX-Custom: a, b\r\n\r\n",
    b"POST /post HTTP/1.1\r\nHost: fuzz.test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
    b"POST /chunked HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"GET /socket HTTP/1.1\r\nHost: fuzz.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"GET http://fuzz.test/absolute HTTP/1.1\r\nHost: fuzz.test\r\n\r\n",
    b"GET /old HTTP/1.0\r\nAccept: */*\r\n\r\n",
    b"PUT /put HTTP/1.1\r\nHost: fuzz.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
    b"HEAD /head HTTP/1.1\r\nHost: fuzz.test\r\nConnection: close\r\n\r\n",
];

/// A request from `REQUESTS` with one to three mutations.
fn mutated_request(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut data = REQUESTS[rng.usize(..REQUESTS.len())].to_vec();
    for _ in 0..rng.usize(1..=3) {
        match rng.u8(..10) {
            0 => insert_line(
                &mut data,
                b"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n",
            ),
            1 => insert_line(&mut data, bad_field(rng).as_bytes()),
            2 => {
                insert_line(&mut data, b"Transfer-Encoding: chunked\r\n");
                replace_body(&mut data, bad_chunks(rng));
            }
            3 => {
                let method = match rng.u8(..3) {
                    0 => "M".repeat(rng.usize(100..2000)),
                    1 => String::from_utf8_lossy(&[rng.u8(..), rng.u8(..)]).into_owned(),
                    _ => pick(rng, "G\0ET||GET GET|get|\x7f|PRI|CONNECT|TRACE").into(),
                };
                replace_word(&mut data, 0, method.as_bytes());
            }
            4 => {
                let long = format!("/{}", "a".repeat(9000));
                let targets = [
                    "*",
                    "/%zz/../../etc/passwd",
                    "//double",
                    "http://[::1",
                    "?x",
                    "/a b",
                    "/\x01",
                    "https://fuzz.test:99999/",
                    &long,
                ];
                let target = targets[rng.usize(..targets.len())];
                replace_word(&mut data, 1, target.as_bytes());
            }
            5 => {
                let version = pick(
                    rng,
                    "HTTP/9.9|HTTP/1.12|HTTX/1.1|HTTP/2.0|HTTP/1|http/1.1|HTTP/1.1 extra|",
                );
                replace_word(&mut data, 2, version.as_bytes());
            }
            6 => {
                let host = pick(
                    rng,
                    "Host: other.test\r\n|Host:\r\n|Host: a b\r\n|Host: [::1\r\n",
                );
                insert_line(&mut data, host.as_bytes());
            }
            7 => {
                // A body over `max_body_size` (16 KiB), announced or not.
                insert_line(&mut data, b"Content-Length: 20000\r\n");
                replace_body(
                    &mut data,
                    &vec![b'x'; if rng.bool() { 20_000 } else { 100 }],
                );
            }
            8 => {
                // Pipelined: another request right behind.
                let next = REQUESTS[rng.usize(..REQUESTS.len())];
                data.extend_from_slice(next);
            }
            _ => mutate_bytes(rng, &mut data),
        }
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_are_answered_or_closed_and_wharf_keeps_serving() {
    let seed = seed();
    let backend = echo().await;
    let mut wharf = Wharf::start(
        "header_timeout = \"500ms\"\nmax_body_size = \"16KiB\"",
        &format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [upstream.app]\nservers = [\"{backend}\"]\n"
        ),
    );
    // The requests as sent, then 400 mutated ones.
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut cases: Vec<(Vec<u8>, bool)> = REQUESTS.iter().map(|r| (r.to_vec(), true)).collect();
    cases.extend((0..400).map(|_| (mutated_request(&mut rng), false)));
    let addr = wharf.addr;
    run_cases(
        &mut wharf,
        seed,
        "/alive",
        cases,
        |_, (bytes, intact)| async move {
            let seen = probe(addr, &bytes, true).await;
            (bytes, intact, seen)
        },
        |i, (bytes, intact, seen)| {
            let case = || format!("case {i} (seed {seed}): {}", show(&bytes));
            // A head httparse (which both wharf's paths use) finds
            // incomplete must be closed after header_timeout, without the
            // client closing first. A complete head with a body still to
            // come may wait for it until the client shuts its side.
            let mut fields = [httparse::EMPTY_HEADER; 512];
            let partial = matches!(
                httparse::Request::new(&mut fields).parse(&bytes),
                Ok(httparse::Status::Partial)
            );
            match seen {
                (Seen::Answer { status, .. }, None) if intact => {
                    let expected = if bytes.starts_with(b"GET /socket") {
                        101
                    } else {
                        200
                    };
                    assert_eq!(status, expected, "{}", case());
                }
                (Seen::Answer { .. } | Seen::Closed, None) if !intact => {}
                (Seen::Silent, Some(Seen::Answer { .. } | Seen::Closed)) if !intact && !partial => {
                }
                other => panic!("{other:?} for {}", case()),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_bodies_are_the_clients_fault_not_the_servers() {
    // Passive ejection is on by default (5 failures in 10 s): clients
    // sending broken chunked bodies must not eject a healthy server.
    let backend = echo().await;
    let mut wharf = Wharf::start(
        "",
        &format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [upstream.app]\nservers = [\"{backend}\"]\n"
        ),
    );
    for (i, body) in [
        &b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"[..],
        b"5\r\nhelloXX0\r\n\r\n",
    ]
    .iter()
    .cycle()
    .take(8)
    .enumerate()
    {
        let mut request =
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(body);
        match probe(wharf.addr, &request, true).await {
            (Seen::Answer { status: 400, .. }, None) => {}
            other => panic!("request {i}: {other:?}; logs:\n{}", last_logs(&wharf)),
        }
    }
    assert_serving(&mut wharf, "/after", "after 8 broken bodies").await;
    assert!(!wharf.logs_contain("ejected"), "{}", last_logs(&wharf));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_connections_are_closed_and_wharf_keeps_serving() {
    let seed = seed();
    let backend = echo().await;
    let mut wharf = Wharf::start(
        "header_timeout = \"500ms\"",
        &format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [upstream.app]\nservers = [\"{backend}\"]\n"
        ),
    );
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut rng = fastrand::Rng::with_seed(seed);
    let cases: Vec<(Vec<u8>, bool)> = (0..100)
        .map(|i| {
            let mut bytes = match i % 4 {
                0 => Vec::new(),
                1 => PREFACE.to_vec(),
                // A TLS ClientHello record header, on the plain port.
                2 => vec![0x16, 0x03, 0x01, rng.u8(..), rng.u8(..), 0x01, 0x00],
                _ => b"GET / HTTP/1.1\r\n".to_vec(),
            };
            let length = rng.usize(1..4096);
            match rng.bool() {
                true => bytes.extend((0..length).map(|_| rng.u8(..))),
                false => bytes
                    .extend((0..length).map(|_| *rng.choice(b"ab:/ \r\n\0\x7f").unwrap_or(&b'a'))),
            }
            (bytes, i % 4 != 1)
        })
        .collect();
    let addr = wharf.addr;
    run_cases(
        &mut wharf,
        seed,
        "/alive",
        cases,
        |_, (bytes, http)| async move {
            let seen = probe(addr, &bytes, http).await;
            (bytes, seen)
        },
        |i, (bytes, seen)| match seen {
            // HTTP/2 frames may stop in the middle of a frame, which
            // wharf waits for until the client's side closes.
            (Seen::Answer { .. } | Seen::Closed, None) | (Seen::Silent, Some(Seen::Closed)) => {}
            (Seen::Silent, Some(Seen::Answer { .. })) if !bytes.starts_with(b"PRI") => {}
            other => panic!("{other:?} for case {i} (seed {seed}): {}", show(&bytes)),
        },
    )
    .await;
}
