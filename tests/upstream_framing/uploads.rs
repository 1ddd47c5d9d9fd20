//! The third way an answer comes back: to a request whose body is
//! streamed or too large to send with its head (a chunked upload from an
//! HTTP/1.1 client, more than 8 KiB from an HTTP/2 one), through hyper's
//! client. The same answers get the same treatment as on the other paths.

use super::*;

const SMUGGLED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_to_uploads_are_framed_as_on_the_other_paths() {
    use Reuse::*;
    use Want::*;
    let cases = [
        (
            "Content-Length beside Transfer-Encoding: chunked",
            vec![send(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            )],
            BadGateway,
            Never,
        ),
        (
            "two differing Content-Lengths",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")],
            BadGateway,
            Never,
        ),
        (
            "the same Content-Length twice",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")],
            Whole(200, b"abc"),
            Kept,
        ),
        (
            "a second answer in the same write as the body",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), send(SMUGGLED)],
            Whole(200, b"hello"),
            Never,
        ),
        (
            "a body shorter than its length",
            vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello"), pause(30), Step::Close],
            Cut(200),
            Never,
        ),
    ];
    let upload = vec![b'u'; 16 * 1024];
    let mut backends = Vec::new();
    for (i, (_, steps, _, _)) in cases.iter().enumerate() {
        for path in ["h1up", "h2up"] {
            backends.push((format!("{path}{i}"), Backend::start(steps.clone()).await));
        }
    }
    let names: Vec<(String, SocketAddr)> = backends
        .iter()
        .map(|(name, backend)| (name.clone(), backend.addr))
        .collect();
    let wharf = start_wharf(&names);
    let mut failures = Vec::new();
    for (i, (name, _, want, reuse)) in cases.iter().enumerate() {
        // HTTP/1.1, a chunked upload: the full stack.
        let target = format!("/h1up{i}/case");
        let request = format!(
            "PUT {target} HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{}\r\n0\r\n\r\n",
            upload.len(),
            String::from_utf8_lossy(&upload)
        );
        let seen = client::h1_raw(wharf.addr, request.as_bytes(), false).await;
        let ok = match (want, &seen) {
            (
                Whole(status, body),
                H1::Whole {
                    status: s, body: b, ..
                },
            ) => s == status && b == body,
            (BadGateway, H1::Whole { status: 502, .. }) => true,
            (Cut(status), H1::Cut { status: s, .. }) => s == status,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{name} (HTTP/1.1 upload): wanted {want:?}, got {seen:?}"
            ));
        }
        if let H1::Whole { head, .. } = &seen {
            if head
                .to_ascii_lowercase()
                .matches("\ncontent-length:")
                .count()
                > 1
            {
                failures.push(format!("{name} (HTTP/1.1 upload): two lengths: {head}"));
            }
        }
        // HTTP/2, 16 KiB.
        let target = format!("/h2up{i}/case");
        let seen = client::h2(&wharf.url(&target), http::Method::PUT, &upload).await;
        let ok = match (want, &seen) {
            (
                Whole(status, body),
                H2::Whole {
                    status: s, body: b, ..
                },
            ) => s == status && b == body,
            (BadGateway, H2::Whole { status: 502, .. }) => true,
            (Cut(status), H2::Reset { status: s, .. }) => s == status,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{name} (HTTP/2 upload): wanted {want:?}, got {seen:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (j, label) in ["h1up", "h2up"].into_iter().enumerate() {
            let backend = &backends[2 * i + j].1;
            let good = format!("/{label}{i}/good");
            let second = client::h2(&wharf.url(&good), http::Method::PUT, &upload).await;
            if !matches!(&second, H2::Whole { status: 200, body, .. } if body == good.as_bytes()) {
                failures.push(format!("{name} ({label}): the next upload got {second:?}"));
            }
            let (first, next) = (
                backend.conn_of(&format!("/{label}{i}/case")),
                backend.conn_of(&good),
            );
            let fine = match reuse {
                Never => first.is_none() || next != first,
                // Well framed: reuse is up to the pool (hot connections).
                Kept => true,
            };
            if !fine {
                failures.push(format!(
                    "{name} ({label}): wanted {reuse:?}, the case came on {first:?}, the next on {next:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
