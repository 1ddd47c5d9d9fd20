//! An upstream that answers (a 413) before it has read the request body,
//! while the client is still sending it: the client gets that answer,
//! and the upstream connection, whose request was never sent whole, is
//! not used again.

use super::*;

const TOO_LARGE: &[u8] =
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!";
/// The same, from an upstream that means to keep the connection.
const TOO_LARGE_KEPT: &[u8] =
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_early_answer_reaches_a_client_still_sending_its_body() {
    // Whether the upstream connection may serve the next request: never
    // when the body was not sent whole.
    let scenarios: Vec<(&str, Vec<Step>, usize, Option<Reuse>)> = vec![
        (
            "a small body, the upstream reads the rest and drops it",
            vec![send(TOO_LARGE), Step::Drain],
            4 * 1024,
            Some(Reuse::Never),
        ),
        (
            "a large body, the upstream reads the rest and drops it",
            vec![send(TOO_LARGE), Step::Drain],
            4 << 20,
            Some(Reuse::Never),
        ),
        (
            "a large body, the upstream stops reading and keeps the connection",
            vec![send(TOO_LARGE_KEPT), pause(5000)],
            8 << 20,
            Some(Reuse::Never),
        ),
        (
            "a large body, the upstream answers at once, then reads the body and keeps the connection",
            vec![send(TOO_LARGE_KEPT), Step::ReadBody],
            4 << 20,
            // Not reused when wharf stopped sending the body for the
            // answer; reused, rightly, when the whole body had already
            // gone before the answer was read (the upstream then owes
            // nothing). Which one is a race on loopback; the next client
            // getting its own answer, checked for every case, is what
            // must hold.
            None,
        ),
        (
            "a 100 Continue while the body comes, then the answer",
            vec![
                send(b"HTTP/1.1 100 Continue\r\n\r\n"),
                Step::ReadBody,
                send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!"),
            ],
            4 << 20,
            // The body went out whole: the connection may serve again.
            None,
        ),
    ];
    let mut backends = Vec::new();
    let mut names = Vec::new();
    for (i, (_, steps, _, _)) in scenarios.iter().enumerate() {
        for path in ["fast", "general"] {
            let backend = Backend::start(steps.clone()).await;
            names.push((format!("{path}{i}"), backend.addr));
            backends.push(backend);
        }
    }
    let wharf = start_wharf(&names);
    let checks = scenarios.iter().enumerate().map(|(i, (name, _, size, reuse))| {
        let (wharf, backends) = (&wharf, &backends);
        async move {
            let mut failures = Vec::new();
            for (j, path) in ["fast", "general"].into_iter().enumerate() {
                let backend = &backends[2 * i + j];
                let prefix = format!("{path}{i}");
                let target = format!("/{prefix}/early");
                let answered = match path {
                    "fast" => match client::h1_upload(wharf.addr, &target, *size).await {
                        H1::Whole { status, body, .. } => {
                            (status, body) == (413, b"too big!".to_vec())
                        }
                        other => {
                            failures.push(format!("{name} ({path} path): got {other:?}"));
                            true
                        }
                    },
                    _ => {
                        let body = vec![b'u'; *size];
                        match client::h2(&wharf.url(&target), http::Method::POST, &body).await {
                            H2::Whole { status, body, .. } => {
                                (status, body) == (413, b"too big!".to_vec())
                            }
                            other => {
                                failures.push(format!("{name} ({path} path): got {other:?}"));
                                true
                            }
                        }
                    }
                };
                if !answered {
                    failures.push(format!(
                        "{name} ({path} path): not the upstream's 413; the backend saw {:?}",
                        backend.seen()
                    ));
                }
                let good = format!("/{prefix}/good");
                let second = client::h1(wharf.addr, "GET", &good).await;
                if !matches!(&second, H1::Whole { status: 200, body, .. } if body == good.as_bytes()) {
                    failures.push(format!("{name} ({path} path): the next client got {second:?}"));
                }
                let (early, next) = (backend.conn_of(&target), backend.conn_of(&good));
                if early.is_none() || (*reuse == Some(Reuse::Never) && next == early) {
                    failures.push(format!(
                        "{name} ({path} path): the next request came on connection {next:?}, \
                         the early answer's was {early:?}"
                    ));
                }
            }
            failures
        }
    });
    let failures: Vec<String> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
