//! A pooled connection the upstream closes once wharf has written a
//! request on it, before a byte of answer: the request is sent again on a
//! fresh connection only when sending it twice is safe (an idempotent
//! method); anything else gets a 502, and the upstream saw it once.

use super::*;

/// `method` with `body`, after a first request that leaves a pooled
/// connection: whether it must be sent again (and answered) or get a 502.
struct Retry {
    method: &'static str,
    body: &'static [u8],
    again: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pooled_connection_closed_before_any_answer_is_retried_only_when_idempotent() {
    let cases = [
        Retry {
            method: "GET",
            body: b"",
            again: true,
        },
        Retry {
            method: "HEAD",
            body: b"",
            again: true,
        },
        Retry {
            method: "PUT",
            body: b"x=1",
            again: true,
        },
        Retry {
            method: "DELETE",
            body: b"",
            again: true,
        },
        Retry {
            method: "POST",
            body: b"",
            again: false,
        },
        Retry {
            method: "POST",
            body: b"x=1",
            again: false,
        },
        Retry {
            method: "PATCH",
            body: b"x=1",
            again: false,
        },
    ];
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut backends = Vec::new();
    let mut names = Vec::new();
    for (i, _) in cases.iter().enumerate() {
        for path in ["fast", "general"] {
            let backend = Backend::start(vec![Step::CloseIfReused, send(answer)]).await;
            names.push((format!("{path}{i}"), backend.addr));
            backends.push(backend);
        }
    }
    let wharf = start_wharf_retrying(&names, 1);
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for (j, path) in ["fast", "general"].into_iter().enumerate() {
            let backend = &backends[2 * i + j];
            let prefix = format!("{path}{i}");
            let what = format!(
                "{} with {} body bytes ({path} path)",
                case.method,
                case.body.len()
            );
            let method = http::Method::from_bytes(case.method.as_bytes()).expect("method");
            // The first request leaves its connection in the pool.
            let warm = format!("/{prefix}/warm");
            let (status, body) = match path {
                "fast" => match client::h1(wharf.addr, "GET", &warm).await {
                    H1::Whole { status, body, .. } => (status, body),
                    other => panic!("{what}: the first request got {other:?}"),
                },
                _ => match client::h2(&wharf.url(&warm), http::Method::GET, b"").await {
                    H2::Whole { status, body, .. } => (status, body),
                    other => panic!("{what}: the first request got {other:?}"),
                },
            };
            assert_eq!((status, &body[..]), (200, warm.as_bytes()), "{what}");
            let target = format!("/{prefix}/case");
            let status = match path {
                "fast" => {
                    let request = format!(
                        "{} {target} HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n{}",
                        case.method,
                        case.body.len(),
                        String::from_utf8_lossy(case.body)
                    );
                    match client::h1_raw(wharf.addr, request.as_bytes(), case.method == "HEAD")
                        .await
                    {
                        H1::Whole { status, .. } => status,
                        other => panic!("{what}: got {other:?}"),
                    }
                }
                _ => match client::h2(&wharf.url(&target), method, case.body).await {
                    H2::Whole { status, .. } => status,
                    other => panic!("{what}: got {other:?}"),
                },
            };
            let sent: Vec<usize> = backend
                .seen()
                .iter()
                .filter(|seen| seen.path == target)
                .map(|seen| seen.conn)
                .collect();
            let (want_status, want_sent) = if case.again {
                (200, vec![0, 1])
            } else {
                (502, vec![0])
            };
            if status != want_status || sent != want_sent {
                failures.push(format!(
                    "{what}: wanted {want_status}, sent on connections {want_sent:?}; \
                     got {status}, sent on {sent:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
