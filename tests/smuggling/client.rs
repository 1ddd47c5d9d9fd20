//! The client: a raw TCP connection to wharf that writes bytes exactly as
//! a case gives them and reads wharf's responses one at a time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::backend::find;

/// How long the client waits for wharf to answer or close: beyond the
/// tests' `header_timeout` and `idle_timeout` (1 s), so a case wharf
/// waits out still ends in an answer or a close.
const PATIENCE: Duration = Duration::from_secs(4);

/// One response: status, lowercased header fields, decoded body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What reading a response found.
#[derive(Debug)]
pub enum Read {
    Response(Response),
    /// The connection closed (or reset) with no byte of a response.
    Closed,
    /// Neither within `PATIENCE`.
    Silent,
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect to wharf"),
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Writes `bytes`; false when wharf had already closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Reads more; false at EOF, on an error, or after `PATIENCE`.
    async fn fill(&mut self) -> Option<bool> {
        if self.eof {
            return Some(false);
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(true)
            }
            Ok(_) => {
                self.eof = true;
                Some(false)
            }
            Err(_) => None,
        }
    }

    /// Reads one response.
    pub async fn response(&mut self) -> Read {
        let head_end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            match self.fill().await {
                Some(true) => {}
                Some(false) if self.buf.is_empty() => return Read::Closed,
                Some(false) => panic!(
                    "wharf closed inside a response head: {:?}",
                    self.buf.escape_ascii().to_string()
                ),
                None => return Read::Silent,
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line from wharf: {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.chunked_body().await;
        } else {
            let length: usize = response
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while self.buf.len() < length {
                assert_eq!(self.fill().await, Some(true), "wharf's body ended short");
            }
            response.body = self.buf.drain(..length).collect();
        }
        Read::Response(response)
    }

    async fn chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        // Bounded by the body wharf sends: each round takes one chunk.
        for _ in 0..10_000 {
            let line_end = loop {
                if let Some(end) = find(&self.buf, b"\r\n") {
                    break end;
                }
                assert_eq!(self.fill().await, Some(true), "wharf's chunked body ended");
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size from wharf: {line:?}"));
            while self.buf.len() < line_end + 2 + size + 2 {
                assert_eq!(self.fill().await, Some(true), "wharf's chunk ended short");
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            self.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return body;
            }
        }
        panic!("wharf's chunked body did not end");
    }

    /// Reads whatever wharf still answers, until it closes or falls
    /// silent.
    pub async fn drain(&mut self) {
        for _ in 0..4 {
            if !matches!(self.response().await, Read::Response(_)) {
                return;
            }
        }
    }

    /// Whether wharf closes the connection rather than answer the
    /// innocent request `second` (sent now unless it was `pipelined`).
    /// Asking, rather than waiting for a close, keeps a close that only
    /// comes with `idle_timeout` from passing for one.
    pub async fn closes_before(&mut self, second: &str, pipelined: bool) -> bool {
        if !pipelined && !self.send(second.as_bytes()).await {
            return true;
        }
        self.closes().await
    }

    /// Whether wharf closes the connection now (EOF or reset within
    /// `PATIENCE`, with nothing more sent).
    pub async fn closes(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        matches!(self.fill().await, Some(false)) && self.buf.is_empty()
    }
}
