//! Bad input never takes wharf down, and costs well-behaved clients
//! nothing: mutated client requests, garbage connections and mutated
//! upstream answers, generated from a fixed seed (override it with
//! `WHARF_FUZZ_SEED=<number>`; every failure names the seed and the case).
//!
//! Every case is bounded in time: wharf must answer it with a well-formed
//! HTTP/1.1 response or close the connection. After every 50 cases, and
//! at the end, wharf must still be running and serve a good request on a
//! fresh connection, and it must never have logged a panic.
//!
//! This file holds the seed, the failure messages and the checks run
//! between cases; `mutate` the byte-level mutations requests and answers
//! share, `conn` the client that reads what wharf sends, `requests` the
//! client-side cases and `answers` the upstream-side ones.

#[path = "../support/mod.rs"]
mod support;

mod answers;
mod conn;
mod mutate;
mod requests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, timeout_at, Instant};

const DEFAULT_SEED: u64 = 20_240_917;

/// Cases in flight at once: enough to keep a run short while some cases
/// wait out a timeout, few enough for a small machine.
const IN_FLIGHT: usize = 32;

/// How long wharf may take to react to a case before the client gives
/// up: the tests' `header_timeout` (500 ms), with plenty of slack for a
/// loaded debug build.
const PATIENCE: Duration = Duration::from_secs(2);

fn seed() -> u64 {
    match std::env::var("WHARF_FUZZ_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WHARF_FUZZ_SEED={text:?} is not a whole number")),
        Err(_) => DEFAULT_SEED,
    }
}

/// Bytes for a failure message: escaped, and cut short.
fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    match text.char_indices().nth(600) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], bytes.len()),
        None => text,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A good request on a fresh connection must get the echo backend's
/// report, and wharf must be running.
async fn assert_serving(wharf: &mut Wharf, path: &str, context: &str) {
    let logs = |wharf: &Wharf| wharf.logs().join("\n");
    assert!(
        wharf.is_running(),
        "wharf exited {context}; logs:\n{}",
        logs(wharf)
    );
    let request = http::Request::get(wharf.url(path))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = match timeout(Duration::from_secs(10), client().request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("good GET {path} failed {context}: {error}"),
        Err(_) => panic!("good GET {path} not answered within 10 s {context}"),
    };
    let status = reply.status();
    let body = timeout(Duration::from_secs(10), reply.into_body().collect())
        .await
        .unwrap_or_else(|_| panic!("good GET {path}: body not in time {context}"))
        .unwrap_or_else(|e| panic!("good GET {path}: body failed {context}: {e}"))
        .to_bytes();
    assert_eq!(
        status,
        200,
        "good GET {path} {context}: {}; wharf's last log lines:\n{}",
        show(&body),
        last_logs(wharf)
    );
    let report: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("good GET {path} {context}: not JSON ({e}): {}", show(&body)));
    assert_eq!(report["path"], path, "good GET {path} {context}");
}

fn last_logs(wharf: &Wharf) -> String {
    let logs = wharf.logs();
    logs[logs.len().saturating_sub(40)..].join("\n")
}

fn assert_no_panic(wharf: &Wharf, seed: u64) {
    assert!(
        !wharf.logs_contain("panicked"),
        "wharf panicked (seed {seed}); logs:\n{}",
        wharf.logs().join("\n")
    );
}

/// Runs `cases` (`IN_FLIGHT` at a time), checking each result with
/// `check` and, after every 50 and at the end, that wharf still serves.
async fn run_cases<C, F, R>(
    wharf: &mut Wharf,
    seed: u64,
    good_path: &str,
    cases: Vec<C>,
    run: impl Fn(usize, C) -> F,
    check: impl Fn(usize, R),
) where
    F: std::future::Future<Output = R>,
{
    let total = cases.len();
    let mut results = futures_util::stream::iter(cases.into_iter().enumerate())
        .map(|(i, case)| {
            let done = run(i, case);
            async move { (i, done.await) }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut finished = 0;
    while let Some((i, result)) = results.next().await {
        check(i, result);
        finished += 1;
        if finished % 50 == 0 || finished == total {
            let context = format!("after {finished} cases (seed {seed})");
            assert_serving(wharf, &format!("{good_path}/{finished}"), &context).await;
        }
    }
    assert_no_panic(wharf, seed);
}
