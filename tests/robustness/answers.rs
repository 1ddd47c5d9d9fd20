//! What upstreams send: a scripted upstream answers each case with a
//! well-formed or mutated response, and HTTP/1 and HTTP/2 clients must
//! get it whole or not at all, on a connection that still serves.

use super::conn::{connect, Seen};
use super::mutate::*;
use super::*;

/// Answers a well-behaved upstream sends: the bytes, whether it closes
/// after them, and what a client must get when they are not mutated.
const ANSWERS: &[(&[u8], bool, u16, &[u8])] = &[
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n", false, 200, b"hello world\n"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n7\r\n world\n\r\n0\r\nX-Sum: 42\r\n\r\n", false, 200, b"hello world\n"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, b"ok"),
    (b"HTTP/1.1 204 No Content\r\nX-Kind: empty\r\n\r\n", false, 204, b""),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close", true, 200, b"body until close"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", false, 404, b"not found"),
];

/// One scripted upstream answer.
#[derive(Clone)]
struct Scripted {
    bytes: Vec<u8>,
    /// Close the connection once written.
    close: bool,
}

/// An answer from `ANSWERS` with one to three mutations.
fn mutated_answer(rng: &mut fastrand::Rng) -> Scripted {
    let (bytes, close, _, _) = ANSWERS[rng.usize(..ANSWERS.len())];
    let mut answer = Scripted {
        bytes: bytes.to_vec(),
        close: close || rng.u8(..4) == 0,
    };
    let data = &mut answer.bytes;
    for _ in 0..rng.usize(1..=3) {
        match rng.u8(..8) {
            0 => {
                let status = pick(rng, "HTTP/1.1 2000 OK|HTTP/1.1 099 Low|HTTP/1.1 abc Nope|HTTP/1.1 600 High|HTTP/1.1 200|HTTP/2.0 200 OK|ICY 200 OK|HTTP/1.1  200  OK|HTTP/1.0 200 OK|HTTP/1.1 -20 OK|");
                let end = after_first_line(data).saturating_sub(2);
                data.splice(..end, status.bytes());
            }
            1 => {
                insert_line(data, b"Transfer-Encoding: chunked\r\n");
                replace_body(data, bad_chunks(rng));
            }
            2 => {
                // Promises more than it sends, then closes.
                let body = find(data, b"\r\n\r\n").map_or(0, |i| data.len() - i - 4);
                let line = format!("Content-Length: {}\r\n", body + rng.usize(1..5000));
                insert_line(data, line.as_bytes());
                answer.close = true;
            }
            3 => insert_line(data, b"Content-Length: 3\r\n"),
            4 => insert_line(data, bad_field(rng).as_bytes()),
            5 => {
                let many: String = (0..rng.usize(100..300))
                    .map(|i| format!("X-Field-{i}: {i}\r\n"))
                    .collect();
                insert_line(data, many.as_bytes());
            }
            _ => mutate_bytes(rng, data),
        }
    }
    answer
}

/// A raw upstream answering `GET /case/N` with `answers[N]`, in two
/// writes, keeping the connection for the next request unless the
/// answer says to close.
async fn scripted_upstream(answers: Arc<Vec<Scripted>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or_default();
                    let case = path
                        .strip_prefix("/case/")
                        .and_then(|n| n.parse::<usize>().ok());
                    let Some(answer) = case.and_then(|n| answers.get(n)) else {
                        return;
                    };
                    let (first, rest) = answer.bytes.split_at(answer.bytes.len() / 2);
                    if stream.write_all(first).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if stream.write_all(rest).await.is_err() || answer.close {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// wharf in front of the scripted upstream (every case reaches it: no
/// retries, no ejection) and of the echo backend at `/ok`; the answers
/// as sent come first, then 200 mutated ones.
async fn upstream_cases() -> (Wharf, u64, Vec<Scripted>) {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut answers: Vec<Scripted> = ANSWERS
        .iter()
        .map(|(bytes, close, _, _)| Scripted {
            bytes: bytes.to_vec(),
            close: *close,
        })
        .collect();
    answers.extend((0..200).map(|_| mutated_answer(&mut rng)));
    let scripted = scripted_upstream(Arc::new(answers.clone())).await;
    let good = echo().await;
    let wharf = Wharf::start(
        "",
        &format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"scripted\"\n\
             \n  [[site.route]]\n  path = \"/ok\"\n  upstream = \"good\"\n\n\
             [upstream.scripted]\nservers = [\"{scripted}\"]\nresponse_timeout = \"1s\"\nretries = 0\n\n\
             [upstream.scripted.passive]\nmax_fails = 0\n\n\
             [upstream.good]\nservers = [\"{good}\"]\n"
        ),
    );
    (wharf, seed, answers)
}

/// How long a client waits for a case through wharf: the answer's head,
/// or a pause in its body, is cut off after `response_timeout` (1 s).
const CASE_BOUND: Duration = Duration::from_secs(5);

/// What an answer as sent must reach the client as.
fn expected(i: usize) -> Option<(u16, &'static [u8])> {
    ANSWERS.get(i).map(|(_, _, status, body)| (*status, *body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_upstream_answers_reach_http1_clients_whole_or_not_at_all() {
    let (mut wharf, seed, answers) = upstream_cases().await;
    let addr = wharf.addr;
    let run = |i: usize| async move {
        let mut conn = connect(addr).await;
        let request = format!("GET /case/{i} HTTP/1.1\r\nHost: fuzz.test\r\n\r\n");
        conn.stream
            .write_all(request.as_bytes())
            .await
            .expect("write");
        let first = conn
            .response(Instant::now() + CASE_BOUND, true, false)
            .await;
        // The same connection must then serve a good request, unless
        // wharf said it closes it.
        let mut second = None;
        if let Seen::Answer { reusable: true, .. } = first {
            let request = format!("GET /ok/after/{i} HTTP/1.1\r\nHost: fuzz.test\r\n\r\n");
            let _ = conn.stream.write_all(request.as_bytes()).await;
            second = Some(
                conn.response(Instant::now() + CASE_BOUND, true, false)
                    .await,
            );
        }
        (first, second)
    };
    let check = |i: usize, (first, second): (Seen, Option<Seen>)| {
        let case = || {
            format!(
                "case {i} (seed {seed}): upstream sent {}",
                show(&answers[i].bytes)
            )
        };
        match (&first, expected(i)) {
            (Seen::Answer { status, body, .. }, Some(want)) => {
                assert_eq!((*status, &body[..]), want, "{}", case())
            }
            (Seen::Answer { .. } | Seen::Closed, None) => {}
            _ => panic!("{first:?} for {}", case()),
        }
        match &second {
            None => {}
            Some(Seen::Answer {
                status: 200, body, ..
            }) => {
                let report: serde_json::Value = serde_json::from_slice(body)
                    .unwrap_or_else(|e| panic!("good GET after {}: {e}: {}", case(), show(body)));
                assert_eq!(report["path"], format!("/ok/after/{i}"), "{}", case());
            }
            Some(other) => panic!("good GET after a {first:?}: {other:?}, {}", case()),
        }
    };
    // The answers as sent first, one at a time: a mutated answer the
    // upstream leaves half-read on a kept connection may spoil the next.
    for i in 0..ANSWERS.len() {
        check(i, run(i).await);
    }
    let offset = ANSWERS.len();
    let mutated = vec![(); answers.len() - offset];
    run_cases(
        &mut wharf,
        seed,
        "/ok/alive",
        mutated,
        |i, _| run(offset + i),
        |i, seen| check(offset + i, seen),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_upstream_answers_reach_http2_clients_whole_or_not_at_all() {
    let (mut wharf, seed, answers) = upstream_cases().await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let base = wharf.url("");
    // Ok(None): the request or its body failed, which is allowed; Err: a hang.
    let run = |i: usize| {
        let (h2, url) = (h2.clone(), format!("{base}/case/{i}"));
        async move {
            let request = http::Request::get(url)
                .body(Full::new(Bytes::new()))
                .expect("request");
            let response = match timeout(CASE_BOUND, h2.request(request)).await {
                Err(_) => return Err("no response head in time"),
                Ok(Err(_)) => return Ok(None),
                Ok(Ok(response)) => response,
            };
            let status = response.status().as_u16();
            match timeout(CASE_BOUND, response.into_body().collect()).await {
                Err(_) => Err("body neither ended nor failed in time"),
                Ok(Err(_)) => Ok(None),
                Ok(Ok(body)) => Ok(Some((status, body.to_bytes()))),
            }
        }
    };
    let check = |i: usize, result: Result<Option<(u16, Bytes)>, &str>| {
        let case = || {
            format!(
                "case {i} (seed {seed}): upstream sent {}",
                show(&answers[i].bytes)
            )
        };
        match (result, expected(i)) {
            (Ok(Some((status, body))), Some(want)) => {
                assert_eq!((status, &body[..]), want, "{}", case())
            }
            (Ok(_), None) => {}
            (other, _) => panic!("{other:?} for {}", case()),
        }
    };
    // The answers as sent first, one at a time: a mutated answer the
    // upstream leaves half-read on a kept connection may spoil the next.
    for i in 0..ANSWERS.len() {
        check(i, run(i).await);
    }
    let offset = ANSWERS.len();
    let mutated = vec![(); answers.len() - offset];
    run_cases(
        &mut wharf,
        seed,
        "/ok/alive",
        mutated,
        |i, _| run(offset + i),
        |i, seen| check(offset + i, seen),
    )
    .await;
    // The HTTP/2 connection all the cases shared still serves.
    let request = http::Request::get(format!("{base}/ok/h2"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = timeout(CASE_BOUND, h2.request(request))
        .await
        .unwrap_or_else(|_| panic!("good HTTP/2 GET not answered in time (seed {seed})"))
        .unwrap_or_else(|e| panic!("good HTTP/2 GET failed (seed {seed}): {e}"));
    assert_eq!(response.status(), 200, "good HTTP/2 GET (seed {seed})");
}
