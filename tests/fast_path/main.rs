//! The HTTP/1.1 fast path (src/h1/) against scripted and real backends on
//! loopback: every way an upstream can frame a body, pipelining, upstream
//! keep-alive and its failures, and the hand-over to the full stack in
//! the middle of a connection.
//!
//! This file holds the scripted backend, the site config, and the raw
//! client connection every test reads responses with.

#[path = "../support/mod.rs"]
mod support;

mod answers;
mod compression;
mod deadlines;
mod keepalive;
mod requests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// When a scripted backend closes a connection after answering.
#[derive(Clone, Copy)]
enum Close {
    Never,
    /// Right after the answer (the body runs until close).
    AtOnce,
    /// This long after the answer, as a keep-alive timeout would.
    After(Duration),
}

/// A backend that answers every request with `answer(path)` and counts
/// the connections it accepted.
async fn scripted(
    answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    close: Close,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
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
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    if stream.write_all(&answer(&path)).await.is_err() {
                        return;
                    }
                    match close {
                        Close::Never => {}
                        Close::AtOnce => return,
                        Close::After(delay) => {
                            tokio::time::sleep(delay).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn proxy_to(addr: SocketAddr) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{addr}\"]\n"
    )
}

/// One HTTP/1.1 response read off a client connection: status, headers
/// (lowercase names) and the decoded body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection that reads responses one at a time.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection ended inside a body");
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return String::from_utf8_lossy(&line[..end]).into_owned();
            }
            assert!(self.fill().await, "connection ended inside a head");
        }
    }

    /// Reads one response to a request made with `method`.
    async fn response(&mut self, method: &str) -> Response {
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return response;
        }
        if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let size =
                    usize::from_str_radix(self.line().await.split(';').next().unwrap_or(""), 16)
                        .expect("chunk size");
                if size == 0 {
                    while !self.line().await.is_empty() {}
                    break;
                }
                let data = self.take(size).await;
                response.body.extend_from_slice(&data);
                assert_eq!(self.take(2).await, b"\r\n");
            }
        } else if let Some(length) = response.header("content-length") {
            let length = length.parse().expect("length");
            response.body = self.take(length).await;
        } else {
            while self.fill().await {}
            response.body = std::mem::take(&mut self.buf);
        }
        response
    }

    /// True when the server closed the connection.
    async fn closed(&mut self) -> bool {
        !self.fill().await && self.buf.is_empty()
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n\r\n").into_bytes()
}
