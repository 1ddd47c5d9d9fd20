//! The upstream: a raw TCP server that reads what wharf sends as strictly
//! as a careful HTTP/1.1 server would, records every request it can frame
//! (and every byte it cannot), and answers each framed request with a
//! small fixed response naming the request's target.
//!
//! A desync shows here as a request nobody sent (its target is
//! `/smuggled` in every case), as two requests where the client sent one,
//! or as bytes that are not a request at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Most bytes one connection may send before the backend gives up on it.
const MAX_CONNECTION_BYTES: usize = 1 << 20;

/// One request as the backend framed it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Lowercased names, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Seen {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the backend saw.
#[derive(Debug, Clone)]
pub enum Event {
    Request(Seen),
    /// Bytes that do not frame as a request (or frame ambiguously):
    /// why, and the bytes from where framing failed.
    Garbage(String, Vec<u8>),
    /// The start of a request, then the connection closed: wharf gave up
    /// on a request it had begun to forward. Harmless: nothing is framed.
    Cut,
}

/// The recording backend.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Backend {
    pub async fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let events = Arc::new(Mutex::new(Vec::new()));
        let recorded = events.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, recorded.clone()));
            }
        });
        Backend { addr, events }
    }

    /// The events recorded since the last call.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().expect("events"))
    }
}

async fn serve(mut stream: TcpStream, events: Arc<Mutex<Vec<Event>>>) {
    let mut buf = Vec::new();
    let mut total = 0;
    loop {
        match frame(&buf) {
            Framed::Request(seen, used) => {
                buf.drain(..used);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                    seen.target.len(),
                    seen.target
                );
                events.lock().expect("events").push(Event::Request(seen));
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Framed::Garbage(why) => {
                events
                    .lock()
                    .expect("events")
                    .push(Event::Garbage(why, buf.clone()));
                return;
            }
            Framed::Partial => {}
        }
        let mut chunk = [0u8; 16384];
        // Bounded: wharf closes an upstream connection it gave up on, and
        // a test never waits this long.
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 && total + n <= MAX_CONNECTION_BYTES => {
                total += n;
                buf.extend_from_slice(&chunk[..n]);
            }
            _ => {
                if !buf.is_empty() {
                    events.lock().expect("events").push(Event::Cut);
                }
                return;
            }
        }
    }
}

enum Framed {
    Partial,
    /// A request and how many bytes it took.
    Request(Seen, usize),
    Garbage(String),
}

/// Frames one request at the start of `buf` the way RFC 9112 says a
/// recipient must, refusing everything ambiguous.
fn frame(buf: &[u8]) -> Framed {
    if buf.is_empty() {
        return Framed::Partial;
    }
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut fields);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Framed::Partial,
        Err(error) => return Framed::Garbage(format!("head: {error}")),
    };
    if !buf[..head_len].ends_with(b"\r\n\r\n") || has_bare_lf(&buf[..head_len]) {
        return Framed::Garbage("head lines not ended by CRLF".into());
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut seen = Seen {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
    };
    let te = seen.all("transfer-encoding");
    let cl = seen.all("content-length");
    if !te.is_empty() {
        if te != ["chunked"] || !cl.is_empty() {
            return Framed::Garbage(format!("framing: te {te:?} cl {cl:?}"));
        }
        return match chunked(&buf[head_len..]) {
            Chunks::Partial => Framed::Partial,
            Chunks::Garbage(why) => Framed::Garbage(why),
            Chunks::Done(body, trailers, used) => {
                seen.body = body;
                seen.trailers = trailers;
                Framed::Request(seen, head_len + used)
            }
        };
    }
    let length = match cl.as_slice() {
        [] => 0,
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) && one.len() < 10 => {
            one.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return Framed::Garbage(format!("framing: cl {cl:?}")),
    };
    if buf.len() < head_len + length {
        return Framed::Partial;
    }
    seen.body = buf[head_len..head_len + length].to_vec();
    Framed::Request(seen, head_len + length)
}

fn has_bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

enum Chunks {
    Partial,
    /// Body, trailers, bytes used.
    Done(Vec<u8>, Vec<(String, String)>, usize),
    Garbage(String),
}

/// A strict chunked decoder: hex sizes, extensions only after `;`, CRLF
/// everywhere.
fn chunked(bytes: &[u8]) -> Chunks {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(&bytes[at..], b"\r\n") else {
            return if bytes.len() - at > 1024 {
                Chunks::Garbage("chunk size line too long".into())
            } else {
                Chunks::Partial
            };
        };
        let line = &bytes[at..at + line_end];
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        if size.is_empty()
            || size.len() > 8
            || !size.iter().all(u8::is_ascii_hexdigit)
            || line.contains(&b'\n')
            || line.contains(&b'\r')
        {
            return Chunks::Garbage(format!("chunk size line {:?}", line.escape_ascii()));
        }
        let size = usize::from_str_radix(std::str::from_utf8(size).unwrap_or("0"), 16).unwrap_or(0);
        at += line_end + 2;
        if size == 0 {
            break;
        }
        if bytes.len() < at + size + 2 {
            return Chunks::Partial;
        }
        body.extend_from_slice(&bytes[at..at + size]);
        if &bytes[at + size..at + size + 2] != b"\r\n" {
            return Chunks::Garbage("chunk data not followed by CRLF".into());
        }
        at += size + 2;
    }
    let mut trailers = Vec::new();
    loop {
        let Some(line_end) = find(&bytes[at..], b"\r\n") else {
            return Chunks::Partial;
        };
        let line = &bytes[at..at + line_end];
        at += line_end + 2;
        if line.is_empty() {
            return Chunks::Done(body, trailers, at);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Chunks::Garbage(format!("trailer line {:?}", line.escape_ascii()));
        };
        trailers.push((
            String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase(),
            String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_string(),
        ));
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
