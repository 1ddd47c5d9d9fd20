//! The same framing faults when wharf compresses the answer for its
//! client (fast path): the body decoded up to its end and no further,
//! one cut short cut short for the client too, and the connection with
//! bytes left over never reused.

use std::io::Read;

use super::*;

const PAGE: &str = "<p>a page long enough to be worth compressing, twice over</p>";

fn page(framing: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{framing}\r\n{body}").into_bytes()
}

fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .ok()
        .map(|_| out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compressed_answers_end_where_their_framing_says() {
    let length = format!("Content-Length: {}\r\n", PAGE.len());
    let chunked = format!("{:x}\r\n{PAGE}\r\n0\r\n\r\n", PAGE.len());
    let smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL";
    // (name, steps, what the client gets, the connection reused)
    let cases: Vec<(&str, Vec<Step>, Want, Reuse)> = vec![
        (
            "a length, then a second answer",
            vec![send(&page(&length, &format!("{PAGE}{smuggled}")))],
            Want::Whole(200, PAGE.as_bytes()),
            Reuse::Never,
        ),
        (
            "chunked, then a second answer",
            vec![send(&page(
                "Transfer-Encoding: chunked\r\n",
                &format!("{chunked}{smuggled}"),
            ))],
            Want::Whole(200, PAGE.as_bytes()),
            Reuse::Never,
        ),
        (
            "a length, and the body cut short",
            // Compressed whole once read whole: nothing was sent yet.
            vec![send(&page(&length, &PAGE[..10])), pause(30), Step::Close],
            Want::BadGateway,
            Reuse::Never,
        ),
        (
            "chunked, and the body cut short",
            vec![
                send(&page("Transfer-Encoding: chunked\r\n", &chunked[..20])),
                pause(30),
                Step::Close,
            ],
            Want::Cut(200),
            Reuse::Never,
        ),
        (
            "chunked as it should be (the control)",
            vec![send(&page("Transfer-Encoding: chunked\r\n", &chunked))],
            Want::Whole(200, PAGE.as_bytes()),
            Reuse::Kept,
        ),
    ];
    let mut backends = Vec::new();
    for (_, steps, _, _) in &cases {
        backends.push(Backend::start(steps.clone()).await);
    }
    let names: Vec<(String, SocketAddr)> = backends
        .iter()
        .enumerate()
        .map(|(i, backend)| (format!("gzip{i}"), backend.addr))
        .collect();
    let wharf = start_wharf(&names);
    let mut failures = Vec::new();
    for (i, (name, _, want, reuse)) in cases.iter().enumerate() {
        let request = format!(
            "GET /gzip{i}/case HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        let seen = client::h1_raw(wharf.addr, request.as_bytes(), false).await;
        let ok = match (&seen, want) {
            (
                H1::Whole {
                    status, head, body, ..
                },
                Want::Whole(want, page),
            ) => {
                status == want
                    && head.to_ascii_lowercase().contains("content-encoding: gzip")
                    && gunzip(body).as_deref() == Some(*page)
            }
            (H1::Whole { status: 502, .. }, Want::BadGateway) => true,
            (H1::Cut { status, .. }, Want::Cut(want)) => status == want,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: got {seen:?}"));
        }
        let good = format!("/gzip{i}/good");
        let second = client::h1(wharf.addr, "GET", &good).await;
        if !matches!(&second, H1::Whole { status: 200, body, .. } if body == good.as_bytes()) {
            failures.push(format!("{name}: the next client got {second:?}"));
        }
        let backend = &backends[i];
        let (first, next) = (
            backend.conn_of(&format!("/gzip{i}/case")),
            backend.conn_of(&good),
        );
        let fine = match reuse {
            Reuse::Never => next != first,
            Reuse::Kept => next == first,
        };
        if !fine {
            failures.push(format!(
                "{name}: wanted {reuse:?}, the case came on connection {first:?}, the next on {next:?}"
            ));
        }
    }
    // The access log says what the client got, not what the upstream began.
    let logged = eventually(Duration::from_secs(5), || {
        wharf.access_log().iter().any(|line| {
            line["url"]["path"] == "/gzip2/case" && line["http"]["response"]["status_code"] == 502
        })
    })
    .await;
    if !logged {
        failures.push(format!("the 502 is not logged: {:?}", wharf.access_log()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
