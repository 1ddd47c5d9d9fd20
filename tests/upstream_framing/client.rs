//! What a client sees: an HTTP/1.1 client reading strictly on a raw
//! connection (a body cut short and bytes after an answer are reported,
//! never guessed at), and an HTTP/2 client on a connection of its own.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::{find, BOUND};

/// What an HTTP/1.1 client saw. (Some fields are read only in failure
/// messages, through `Debug`.)
#[derive(Debug)]
#[allow(dead_code)]
pub enum H1 {
    /// A whole answer; `closed`: the connection closed right after it.
    Whole {
        status: u16,
        head: String,
        body: Vec<u8>,
        closed: bool,
    },
    /// A head, then the connection closed before the body's end.
    Cut { status: u16, body: Vec<u8> },
    /// The connection closed before a whole head.
    NoAnswer(String),
    /// Bytes that are no HTTP/1.1 answer, or more bytes after one: a
    /// second answer mixed into this one.
    Mixed(String),
    /// Nothing more within the bound.
    Stuck(String),
}

/// A raw client connection and the bytes read but not used yet.
struct Conn<R> {
    stream: R,
    buf: Vec<u8>,
    deadline: Instant,
}

enum Fill {
    More,
    Eof,
    Late,
}

impl<R: AsyncRead + Unpin> Conn<R> {
    async fn fill(&mut self) -> Fill {
        let mut chunk = [0u8; 16 * 1024];
        match timeout_at(self.deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Fill::Late,
            Ok(Ok(0)) | Ok(Err(_)) => Fill::Eof,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::More
            }
        }
    }

    /// A line ending in CRLF, without it; `Err` with what stopped it.
    async fn line(&mut self) -> Result<Vec<u8>, Fill> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(line[..end].to_vec());
            }
            match self.fill().await {
                Fill::More => {}
                stop => return Err(stop),
            }
        }
    }
}

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Sends `METHOD path` on a new connection and reads the answer.
pub async fn h1(addr: SocketAddr, method: &str, path: &str) -> H1 {
    let request = format!("{method} {path} HTTP/1.1\r\nHost: app.test\r\n\r\n");
    h1_raw(addr, request.as_bytes(), method == "HEAD").await
}

/// Sends `request` on a new connection and reads one answer (`head`: it
/// has no body), then waits a moment for anything more.
pub async fn h1_raw(addr: SocketAddr, request: &[u8], head: bool) -> H1 {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        deadline: Instant::now() + BOUND,
    };
    // A client that sends a large body may see the answer first.
    let _ = conn.stream.write_all(request).await;
    read_answer(&mut conn, head).await
}

/// Sends `POST path` with a body of `size` bytes on a new connection,
/// reading the answer while the body is written (as a browser does), and
/// stops writing when the connection fails.
pub async fn h1_upload(addr: SocketAddr, path: &str, size: usize) -> H1 {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let head = format!("POST {path} HTTP/1.1\r\nHost: app.test\r\nContent-Length: {size}\r\n\r\n");
    let writer = tokio::spawn(async move {
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let piece = vec![b'u'; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let take = left.min(piece.len());
            match timeout_at(Instant::now() + BOUND, write.write_all(&piece[..take])).await {
                Ok(Ok(())) => left -= take,
                _ => return,
            }
        }
        // Dropping the half would close it: a client waits for its answer.
        std::future::pending::<()>().await;
        drop(write);
    });
    let mut conn = Conn {
        stream: read,
        buf: Vec::new(),
        deadline: Instant::now() + BOUND,
    };
    let seen = read_answer(&mut conn, false).await;
    writer.abort();
    seen
}

async fn read_answer<R: AsyncRead + Unpin>(conn: &mut Conn<R>, head: bool) -> H1 {
    let mut text = String::new();
    let status_line = match conn.line().await {
        Ok(line) => line,
        Err(stop) => return stopped(stop, &conn.buf),
    };
    text.push_str(&show(&status_line));
    let status: u16 = match status_line.strip_prefix(b"HTTP/1.1 ") {
        Some(rest) => match std::str::from_utf8(&rest[..rest.len().min(3)])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(status) => status,
            None => return H1::Mixed(text),
        },
        None => return H1::Mixed(text),
    };
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        let line = match conn.line().await {
            Ok(line) => line,
            Err(stop) => return stopped(stop, text.as_bytes()),
        };
        if line.is_empty() {
            break;
        }
        text.push('\n');
        text.push_str(&show(&line));
        let line = String::from_utf8_lossy(&line).to_ascii_lowercase();
        let Some((name, value)) = line.split_once(':') else {
            return H1::Mixed(text);
        };
        match (name, value.trim()) {
            ("content-length", value) => match value.parse::<usize>() {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return H1::Mixed(text),
            },
            ("transfer-encoding", "chunked") => chunked = true,
            ("transfer-encoding", _) => return H1::Mixed(text),
            ("connection", value) => close |= value.contains("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    let cut = |body: Vec<u8>| H1::Cut { status, body };
    if head || status == 204 || status == 304 || (100..200).contains(&status) {
    } else if chunked {
        loop {
            let line = match conn.line().await {
                Ok(line) => line,
                Err(Fill::Eof) => return cut(body),
                Err(stop) => return stopped(stop, text.as_bytes()),
            };
            let size = String::from_utf8_lossy(&line);
            let size = size.split(';').next().unwrap_or_default().trim();
            let Ok(size) = usize::from_str_radix(size, 16) else {
                return H1::Mixed(format!("{text}\nchunk size {}", show(&line)));
            };
            if size == 0 {
                loop {
                    match conn.line().await {
                        Ok(line) if line.is_empty() => break,
                        Ok(_) => {}
                        Err(Fill::Eof) => return cut(body),
                        Err(stop) => return stopped(stop, text.as_bytes()),
                    }
                }
                break;
            }
            while conn.buf.len() < size + 2 {
                match conn.fill().await {
                    Fill::More => {}
                    Fill::Eof => {
                        let have = conn.buf.len().min(size);
                        body.extend(conn.buf.drain(..have));
                        return cut(body);
                    }
                    Fill::Late => return stopped(Fill::Late, text.as_bytes()),
                }
            }
            body.extend(conn.buf.drain(..size));
            if conn.buf.drain(..2).as_slice() != b"\r\n" {
                return H1::Mixed(format!("{text}\nchunk data not ended by CRLF"));
            }
        }
    } else if let Some(length) = length {
        while conn.buf.len() < length {
            match conn.fill().await {
                Fill::More => {}
                Fill::Eof => return cut(std::mem::take(&mut conn.buf)),
                Fill::Late => return stopped(Fill::Late, text.as_bytes()),
            }
        }
        body = conn.buf.drain(..length).collect();
    } else {
        loop {
            match conn.fill().await {
                Fill::More => {}
                Fill::Eof => break,
                Fill::Late => return stopped(Fill::Late, text.as_bytes()),
            }
        }
        body = std::mem::take(&mut conn.buf);
    }
    // Nothing may follow the answer: wait a moment for stray bytes.
    conn.deadline = Instant::now() + std::time::Duration::from_millis(300);
    let closed = loop {
        if !conn.buf.is_empty() {
            return H1::Mixed(format!(
                "{text}\nbody {}\nthen {}",
                show(&body),
                show(&conn.buf)
            ));
        }
        match conn.fill().await {
            Fill::More => {}
            Fill::Eof => break true,
            Fill::Late => break false,
        }
    };
    if close && !closed {
        return H1::Stuck(format!("{text}\nsaid close, stayed open"));
    }
    H1::Whole {
        status,
        head: text,
        body,
        closed,
    }
}

fn stopped(stop: Fill, read: &[u8]) -> H1 {
    match stop {
        Fill::Late => H1::Stuck(show(read)),
        _ => H1::NoAnswer(show(read)),
    }
}

/// What an HTTP/2 client saw. (Some fields are read only in failure
/// messages, through `Debug`.)
#[derive(Debug)]
#[allow(dead_code)]
pub enum H2 {
    Whole {
        status: u16,
        headers: http::HeaderMap,
        body: Vec<u8>,
        trailers: Option<http::HeaderMap>,
    },
    /// A head, then the stream failed.
    Reset {
        status: u16,
        body: Vec<u8>,
    },
    /// No head.
    Failed(String),
    Stuck,
}

/// One request from a new HTTP/2 (h2c) client.
pub async fn h2(url: &str, method: http::Method, body: &[u8]) -> H2 {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let deadline = Instant::now() + BOUND;
    let response = match timeout_at(deadline, client.request(request)).await {
        Err(_) => return H2::Stuck,
        Ok(Err(error)) => return H2::Failed(format!("{error:?}")),
        Ok(Ok(response)) => response,
    };
    let (parts, mut incoming) = response.into_parts();
    let status = parts.status.as_u16();
    let mut body = Vec::new();
    let mut trailers = None;
    loop {
        match timeout_at(deadline, incoming.frame()).await {
            Err(_) => return H2::Stuck,
            Ok(None) => break,
            Ok(Some(Err(_))) => return H2::Reset { status, body },
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => body.extend_from_slice(&data),
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
        }
    }
    H2::Whole {
        status,
        headers: parts.headers,
        body,
        trailers,
    }
}
