//! Bad input never takes wharf down, and costs well-behaved clients
//! nothing: mutated client requests, garbage connections and mutated
//! upstream answers, generated from a fixed seed (override it with
//! `WHARF_FUZZ_SEED=<number>`; every failure names the seed and the case).
//!
//! Every case is bounded in time: wharf must answer it with a well-formed
//! HTTP/1.1 response or close the connection. After every 50 cases, and
//! at the end, wharf must still be running and serve a good request on a
//! fresh connection, and it must never have logged a panic.

mod support;

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

// ---------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------

/// One of the `|`-separated `choices`.
fn pick<'a>(rng: &mut fastrand::Rng, choices: &'a str) -> &'a str {
    let choices: Vec<&str> = choices.split('|').collect();
    choices[rng.usize(..choices.len())]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the first line ends (after its `\n`), or the end.
fn after_first_line(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| i + 1)
}

fn insert_line(data: &mut Vec<u8>, line: &[u8]) {
    let at = after_first_line(data);
    data.splice(at..at, line.iter().copied());
}

/// Start and end (after `\n`) of each line.
fn lines(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    spans
}

/// Replaces what follows the (first) blank line with `body`.
fn replace_body(data: &mut Vec<u8>, body: &[u8]) {
    let end = find(data, b"\r\n\r\n").map_or(data.len(), |i| i + 4);
    data.truncate(end);
    data.extend_from_slice(body);
}

/// Replaces the first line's `index`th space-separated word.
fn replace_word(data: &mut Vec<u8>, index: usize, word: &[u8]) {
    let line_end = after_first_line(data).saturating_sub(2);
    let line = &data[..line_end];
    let mut bounds = vec![0];
    bounds.extend(
        line.iter()
            .enumerate()
            .filter(|(_, &b)| b == b' ')
            .map(|(i, _)| i),
    );
    bounds.push(line_end);
    if index + 1 >= bounds.len() {
        return;
    }
    let start = if index == 0 { 0 } else { bounds[index] + 1 };
    let end = bounds[index + 1].max(start);
    data.splice(start..end, word.iter().copied());
}

/// One mutation any HTTP/1 message can get: bytes flipped, inserted or
/// deleted, lines duplicated or dropped, line ends broken, a huge field.
fn mutate_bytes(rng: &mut fastrand::Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        data.push(rng.u8(..));
        return;
    }
    let at = rng.usize(..data.len());
    match rng.u8(..11) {
        0 => data[at] ^= 1 << rng.u8(..8),
        1 => data.insert(at, rng.u8(..)),
        2 => {
            data.remove(at);
        }
        3 => data.truncate(at.max(1)),
        4 => data.insert(at, 0),
        5 | 6 => {
            // A CR without LF, or a bare LF, in place of one CRLF.
            let ends: Vec<usize> = (0..data.len().saturating_sub(1))
                .filter(|&i| data[i..i + 2] == *b"\r\n")
                .collect();
            if !ends.is_empty() {
                let i = ends[rng.usize(..ends.len())];
                data.remove(if rng.bool() { i + 1 } else { i });
            }
        }
        7 | 8 => {
            let spans = lines(data);
            if !spans.is_empty() {
                let (start, end) = spans[rng.usize(..spans.len())];
                let line = data[start..end].to_vec();
                if rng.bool() {
                    data.splice(end..end, line);
                } else {
                    data.drain(start..end);
                }
            }
        }
        9 => {
            // Longer than `max_header_size` (64 KiB).
            let mut line = b"X-Huge: ".to_vec();
            line.resize(8 + rng.usize(65_000..80_000), b'a');
            line.extend_from_slice(b"\r\n");
            insert_line(data, &line);
        }
        _ => {
            let junk: Vec<u8> = (0..rng.usize(1..40)).map(|_| rng.u8(0x20..0x7f)).collect();
            data.splice(at..at, junk);
        }
    }
}

/// Field lines that are wrong in the same way for requests and answers.
fn bad_field(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..6) {
        0 => "Bad Name: x\r\n".into(),
        1 => "NoColonHere\r\n".into(),
        2 => ": no-name\r\n".into(),
        3 => "X-Fold: a\r\n  folded onto the line above\r\n".into(),
        4 => format!(
            "Content-Length: {}\r\n",
            pick(
                rng,
                "-1|abc|99999999999999999999999|+5|0x10|5, 6|1 1||18446744073709551616"
            )
        ),
        _ => format!(
            "Transfer-Encoding: {}\r\n",
            pick(
                rng,
                "chunked, chunked|gzip|identity| chunked|xchunked|chunked\x0b"
            )
        ),
    }
}

/// A chunked body that no 64-bit length can hold, or otherwise broken.
fn bad_chunks(rng: &mut fastrand::Rng) -> &'static [u8] {
    match rng.u8(..4) {
        0 => b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        1 => b"-1\r\nabc\r\n0\r\n\r\n",
        2 => b"5;ext=\"unterminated\r\nhello\r\n0\r\n\r\n",
        _ => b"5\r\nhelloXX0\r\n\r\n",
    }
}

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

// ---------------------------------------------------------------------
// Reading what wharf sends
// ---------------------------------------------------------------------

/// A client connection and the bytes read from it but not used yet.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Fill {
    More,
    Eof,
    Late,
}

/// What a client saw.
#[derive(Debug)]
enum Seen {
    /// A final response (any status), with its body when it was read;
    /// `reusable`: the connection may carry another request.
    Answer {
        status: u16,
        body: Vec<u8>,
        reusable: bool,
    },
    /// The connection closed (or was reset) before a whole answer.
    Closed,
    /// Bytes that are not a well-formed HTTP/1 response (the reason is
    /// read only in failure messages, through `Debug`).
    Malformed(#[allow(dead_code)] String),
    /// The deadline passed with the connection open and no whole answer.
    Silent,
}

/// How the body of a response ends.
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    async fn fill(&mut self, deadline: Instant) -> Fill {
        let mut chunk = [0u8; 16 * 1024];
        match timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Fill::Late,
            Ok(Ok(0)) | Ok(Err(_)) => Fill::Eof,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::More
            }
        }
    }

    /// Reads the next final response (skipping 1xx ones), and its body
    /// when `whole`; `head` says the request was a HEAD.
    async fn response(&mut self, deadline: Instant, whole: bool, head: bool) -> Seen {
        let (status, framing, reusable) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 512];
            let mut response = httparse::Response::new(&mut fields);
            match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    // What `http::StatusCode` takes, and nginx relays: RFC
                    // 9110 calls 600 to 999 invalid, but asks clients to
                    // treat them as 5xx rather than reject them.
                    if !(100..=999).contains(&status) {
                        return Seen::Malformed(format!("status {status}: {}", show(&self.buf)));
                    }
                    let interim = (100..200).contains(&status) && status != 101;
                    let framing = framing(response.headers, status, head);
                    let close = response.headers.iter().any(|field| {
                        field.name.eq_ignore_ascii_case("connection")
                            && field.value.eq_ignore_ascii_case(b"close")
                    });
                    let framing = match framing {
                        Ok(framing) => framing,
                        Err(error) => {
                            return Seen::Malformed(format!("{error}: {}", show(&self.buf)))
                        }
                    };
                    self.buf.drain(..len);
                    if !interim {
                        let reusable = !close && !matches!(framing, Framing::UntilClose);
                        break (status, framing, reusable);
                    }
                }
                Ok(httparse::Status::Partial) => match self.fill(deadline).await {
                    Fill::More => {}
                    Fill::Eof => return Seen::Closed,
                    Fill::Late => return Seen::Silent,
                },
                Err(error) => return Seen::Malformed(format!("{error}: {}", show(&self.buf))),
            }
        };
        if !whole {
            return Seen::Answer {
                status,
                body: Vec::new(),
                reusable,
            };
        }
        match self.body(framing, deadline).await {
            Ok(body) => Seen::Answer {
                status,
                body,
                reusable,
            },
            Err(seen) => seen,
        }
    }

    async fn body(&mut self, framing: Framing, deadline: Instant) -> Result<Vec<u8>, Seen> {
        let mut body = Vec::new();
        match framing {
            Framing::Empty => return Ok(body),
            Framing::Length(length) => {
                self.need(length, deadline).await?;
                body.extend(self.buf.drain(..length));
            }
            Framing::UntilClose => loop {
                match self.fill(deadline).await {
                    Fill::More => {}
                    Fill::Eof => return Ok(std::mem::take(&mut self.buf)),
                    Fill::Late => return Err(Seen::Silent),
                }
            },
            Framing::Chunked => loop {
                let line = self.line(deadline).await?;
                let size = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size)
                    .ok()
                    .and_then(|size| usize::from_str_radix(size.trim(), 16).ok())
                    .ok_or_else(|| Seen::Malformed(format!("chunk size {}", show(&line))))?;
                if size == 0 {
                    while !self.line(deadline).await?.is_empty() {}
                    return Ok(body);
                }
                self.need(size + 2, deadline).await?;
                if self.buf[size..size + 2] != *b"\r\n" {
                    return Err(Seen::Malformed(format!("chunk end {}", show(&self.buf))));
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
            },
        }
        Ok(body)
    }

    /// Until `length` bytes are buffered.
    async fn need(&mut self, length: usize, deadline: Instant) -> Result<(), Seen> {
        while self.buf.len() < length {
            match self.fill(deadline).await {
                Fill::More => {}
                Fill::Eof => return Err(Seen::Closed),
                Fill::Late => return Err(Seen::Silent),
            }
        }
        Ok(())
    }

    /// The next CRLF-terminated line, without its end.
    async fn line(&mut self, deadline: Instant) -> Result<Vec<u8>, Seen> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            let length = self.buf.len() + 1;
            self.need(length, deadline).await?;
        }
    }

    /// Waits `PATIENCE` for an answer (`http`: a response head; else
    /// the close, whatever arrives before it).
    async fn see(&mut self, http: bool, head: bool) -> Seen {
        let deadline = Instant::now() + PATIENCE;
        match http {
            true => self.response(deadline, false, head).await,
            false => self.closed(deadline).await,
        }
    }

    /// Waits for the connection to close, ignoring what arrives.
    async fn closed(&mut self, deadline: Instant) -> Seen {
        loop {
            match self.fill(deadline).await {
                Fill::More => self.buf.clear(),
                Fill::Eof => return Seen::Closed,
                Fill::Late => return Seen::Silent,
            }
        }
    }
}

/// How a response's body is framed; an error for framing a client
/// cannot trust (RFC 9112 6.3: a sender must not send both, and
/// differing lengths are an error).
fn framing(fields: &[httparse::Header], status: u16, head: bool) -> Result<Framing, String> {
    if head || status == 101 || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    let named = |name: &'static str| {
        fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    };
    let lengths: Vec<&[u8]> = named("content-length").map(|f| f.value).collect();
    let chunked = named("transfer-encoding").any(|f| {
        let last = f.value.rsplit(|&b| b == b',').next().unwrap_or_default();
        last.trim_ascii().eq_ignore_ascii_case(b"chunked")
    });
    if chunked && !lengths.is_empty() {
        return Err("both Transfer-Encoding: chunked and Content-Length".into());
    }
    if chunked {
        return Ok(Framing::Chunked);
    }
    match lengths.first() {
        None => Ok(Framing::UntilClose),
        Some(first) if lengths.iter().any(|l| l != first) => Err("differing Content-Length".into()),
        Some(first) => std::str::from_utf8(first)
            .ok()
            .and_then(|l| l.parse().ok())
            .map(Framing::Length)
            .ok_or_else(|| format!("Content-Length {}", show(first))),
    }
}

async fn connect(addr: SocketAddr) -> Conn {
    let stream = timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("connected to wharf in time")
        .expect("connect to wharf");
    Conn {
        stream,
        buf: Vec::new(),
    }
}

/// Sends `bytes` on a new connection and waits up to `PATIENCE` for an
/// answer (`http`: a well-formed response head; else any bytes until the
/// close) or the close. If neither came, the client shuts its write side,
/// saying it sends nothing more, and waits `PATIENCE` again. Returns what
/// it saw before the shutdown, and after it when it had to.
async fn probe(addr: SocketAddr, bytes: &[u8], http: bool) -> (Seen, Option<Seen>) {
    let mut conn = connect(addr).await;
    let head = bytes.starts_with(b"HEAD ");
    // A write wharf stops reading (it answered, or closed) may fail;
    // what it sent is still there to read. One that blocks is silence.
    let first = match timeout(PATIENCE, conn.stream.write_all(bytes)).await {
        Err(_) => Seen::Silent,
        Ok(_) => conn.see(http, head).await,
    };
    if !matches!(first, Seen::Silent) {
        return (first, None);
    }
    let _ = conn.stream.shutdown().await;
    let second = conn.see(http, head).await;
    (first, Some(second))
}

// ---------------------------------------------------------------------
// wharf, and the checks between cases
// ---------------------------------------------------------------------

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

// ---------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------

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
