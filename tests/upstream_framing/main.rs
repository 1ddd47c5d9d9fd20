//! What an upstream's answer can do to wharf's pooled upstream
//! connections (RFC 9112 6.3): however an answer is framed, malformed or
//! ambiguous, a client gets either that answer whole or a 502, never a mix
//! of two answers; a body cut short is visibly cut short (the HTTP/1.1
//! connection closes, an HTTP/2 stream is reset); and a connection whose
//! state is in doubt is never reused: a second client's request then
//! reaches the backend on a fresh connection and gets its own answer.
//!
//! Every case runs through the HTTP/1.1 fast path (a raw HTTP/1.1 client)
//! and through the general path (an HTTP/2 h2c client, whose requests
//! `h1::client` sends), each against a backend of its own, so that one
//! case's pooled connections never serve another's.
//!
//! This file holds the config and the runner that checks each case;
//! `backend.rs` is the scripted backend, `client.rs` reads what a client
//! sees; the cases are grouped by what they break: lengths, bodiless
//! answers, informational answers, chunked bodies, heads, pooled
//! connections, early answers; then the same faults in compressed answers
//! and in answers to uploads (hyper's client).

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod bodiless;
mod chunked;
mod client;
mod compressed;
mod early;
mod heads;
mod informational;
mod lengths;
mod pooled;
mod uploads;

use std::net::SocketAddr;
use std::time::Duration;

use backend::{pause, send, Backend, Step};
use client::{H1, H2};
use support::*;

/// How long any one exchange may take: wharf's `response_timeout` in
/// these tests is 2 s.
const BOUND: Duration = Duration::from_secs(6);

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// wharf in front of `backends`: `/NAME/` goes to the upstream `NAME`,
/// with one server, no retries and no passive ejection (every request
/// reaches its backend), and a 2 s response timeout.
fn start_wharf(backends: &[(String, SocketAddr)]) -> Wharf {
    start_wharf_retrying(backends, 0)
}

/// `start_wharf` with `retries` (with one, the general path holds a
/// small request body, as by default, and can send it again).
fn start_wharf_retrying(backends: &[(String, SocketAddr)], retries: u32) -> Wharf {
    let mut config = String::from("[[site]]\n");
    for (name, _) in backends {
        config.push_str(&format!(
            "  [[site.route]]\n  path = \"/{name}/\"\n  upstream = \"{name}\"\n"
        ));
    }
    for (name, addr) in backends {
        config.push_str(&format!(
            "\n[upstream.{name}]\nservers = [\"{addr}\"]\nresponse_timeout = \"2s\"\n\
             retries = {retries}\n\n[upstream.{name}.passive]\nmax_fails = 0\n"
        ));
    }
    Wharf::start("", &config)
}

/// What a client must get for a case.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// This status and body, whole.
    Whole(u16, &'static [u8]),
    /// wharf's own 502.
    BadGateway,
    /// A head with this status, then a body cut short where the client
    /// sees it: an HTTP/1.1 connection closed before the body's end, an
    /// HTTP/2 stream reset.
    Cut(u16),
    /// The HTTP/2 stream is reset, after a head with this status or
    /// before any: whether the head's frame leaves before the reset is a
    /// matter of when the connection's task runs. The general path only.
    Reset(u16),
}

/// Whether the case's upstream connection may serve the next request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reuse {
    /// Its state is in doubt: the next request must come on a fresh one.
    Never,
    /// Well framed: the next request must come on the same one.
    Kept,
}

/// One answer an upstream can give, and what clients must see.
struct Case {
    name: &'static str,
    method: &'static str,
    steps: Vec<Step>,
    /// On the fast path (HTTP/1.1 client) and the general path (HTTP/2).
    fast: Want,
    general: Want,
    reuse: Reuse,
}

impl Case {
    fn new(name: &'static str, steps: Vec<Step>, want: Want, reuse: Reuse) -> Case {
        Case {
            name,
            method: "GET",
            steps,
            fast: want,
            general: want,
            reuse,
        }
    }

    fn method(self, method: &'static str) -> Case {
        Case { method, ..self }
    }

    /// The general path answers otherwise than the fast path.
    fn general(self, general: Want) -> Case {
        Case { general, ..self }
    }
}

/// Runs every case through both paths, all at once (each has its
/// backends), and reports every failure together.
async fn run(cases: Vec<Case>) {
    let mut backends = Vec::new();
    let mut names = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for path in ["fast", "general"] {
            let backend = Backend::start(case.steps.clone()).await;
            names.push((format!("{path}{i}"), backend.addr));
            backends.push(backend);
        }
    }
    let wharf = start_wharf(&names);
    let checks = cases.iter().enumerate().map(|(i, case)| {
        let (fast, general) = (&backends[2 * i], &backends[2 * i + 1]);
        let wharf = &wharf;
        async move {
            let mut failures = Vec::new();
            failures.extend(check_fast(wharf, fast, &format!("fast{i}"), case).await);
            failures.extend(check_general(wharf, general, &format!("general{i}"), case).await);
            failures
        }
    });
    let failures: Vec<String> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(!wharf.logs_contain("panicked"), "wharf panicked");
}

/// The case through an HTTP/1.1 client, then a good request from another.
async fn check_fast(wharf: &Wharf, backend: &Backend, prefix: &str, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let seen = client::h1(wharf.addr, case.method, &format!("/{prefix}/case")).await;
    let ok = match (case.fast, &seen) {
        (
            Want::Whole(status, body),
            H1::Whole {
                status: s, body: b, ..
            },
        ) => *s == status && b == body,
        (Want::BadGateway, H1::Whole { status: 502, .. }) => true,
        (Want::Cut(status), H1::Cut { status: s, .. }) => *s == status,
        _ => false,
    };
    if !ok {
        failures.push(format!(
            "{} (fast path): wanted {:?}, got {seen:?}",
            case.name, case.fast
        ));
    }
    if let H1::Whole { head, .. } = &seen {
        let head = head.to_ascii_lowercase();
        let framing = head.matches("\ncontent-length:").count()
            + head.matches("\ntransfer-encoding:").count();
        if framing > 1 {
            failures.push(format!(
                "{}: framed twice for the client: {head}",
                case.name
            ));
        }
    }
    let good = format!("/{prefix}/good");
    let second = client::h1(wharf.addr, "GET", &good).await;
    if !matches!(&second, H1::Whole { status: 200, body, .. } if body == good.as_bytes()) {
        failures.push(format!(
            "{} (fast path): the next client got {second:?}",
            case.name
        ));
    }
    failures.extend(check_reuse(backend, prefix, case, "fast path"));
    failures
}

/// The case through an HTTP/2 client, then a good request from another.
async fn check_general(wharf: &Wharf, backend: &Backend, prefix: &str, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let method = http::Method::from_bytes(case.method.as_bytes()).expect("method");
    let seen = client::h2(&wharf.url(&format!("/{prefix}/case")), method, b"").await;
    let ok = match (case.general, &seen) {
        (
            Want::Whole(status, body),
            H2::Whole {
                status: s, body: b, ..
            },
        ) => *s == status && b == body,
        (Want::BadGateway, H2::Whole { status: 502, .. }) => true,
        (Want::Cut(status), H2::Reset { status: s, .. }) => *s == status,
        (Want::Reset(_), H2::Failed(error)) => error.contains("Reset("),
        (Want::Reset(status), H2::Reset { status: s, .. }) => *s == status,
        _ => false,
    };
    if !ok {
        failures.push(format!(
            "{} (general path): wanted {:?}, got {seen:?}",
            case.name, case.general
        ));
    }
    if let H2::Whole { headers, .. } = &seen {
        if headers.get_all(http::header::CONTENT_LENGTH).iter().count() > 1 {
            failures.push(format!(
                "{}: two lengths for the client: {headers:?}",
                case.name
            ));
        }
    }
    // As the HTTP/1.1 client does after an answer: bytes an upstream
    // sends late reach its idle connection before the next request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let good = format!("/{prefix}/good");
    let second = client::h2(&wharf.url(&good), http::Method::GET, b"").await;
    if !matches!(&second, H2::Whole { status: 200, body, .. } if body == good.as_bytes()) {
        failures.push(format!(
            "{} (general path): the next client got {second:?}",
            case.name
        ));
    }
    failures.extend(check_reuse(backend, prefix, case, "general path"));
    failures
}

/// Whether the good request came on the case's connection.
fn check_reuse(backend: &Backend, prefix: &str, case: &Case, path: &str) -> Option<String> {
    let first = backend.conn_of(&format!("/{prefix}/case"));
    let second = backend.conn_of(&format!("/{prefix}/good"));
    let fine = match case.reuse {
        Reuse::Never => first.is_none() || second.is_some_and(|s| Some(s) != first),
        Reuse::Kept => first.is_some() && second == first,
    };
    (!fine).then(|| {
        format!(
            "{} ({path}): wanted {:?}, the case came on connection {first:?} and the next \
             request on {second:?}; the backend saw {:?}",
            case.name,
            case.reuse,
            backend.seen()
        )
    })
}
