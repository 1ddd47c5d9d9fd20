//! The scripted backend: a raw HTTP/1.1 server on loopback that answers a
//! case's request with the case's bytes, as written, and any other
//! request with its own path, and records on which connection each
//! request came.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{find, BOUND};

/// What the backend does for a case's request, in order.
#[derive(Clone, Debug)]
pub enum Step {
    Send(Vec<u8>),
    Pause(Duration),
    /// Closes the connection.
    Close,
    /// Closes the connection, without answering, when it already carried
    /// a request; goes on to the next step on a fresh connection.
    CloseIfReused,
    /// Reads and drops whatever comes until wharf closes (or `BOUND`).
    Drain,
    /// Reads the request body (for a path ending in `/early`).
    ReadBody,
}

pub fn send(bytes: &[u8]) -> Step {
    Step::Send(bytes.to_vec())
}

pub fn pause(ms: u64) -> Step {
    Step::Pause(Duration::from_millis(ms))
}

/// A request the backend saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Which accepted connection it came on, from 0.
    pub conn: usize,
    pub path: String,
}

/// A raw backend: a request for a path ending in `/case` gets the case's
/// steps, any other gets `200` with its own path as the body. A request
/// body of a `Content-Length` is read before answering, except for a path
/// ending in `/early`, which gets the steps at once (the body is read by
/// `ReadBody`, if at all), and then the connection closed unless the body
/// was read.
pub struct Backend {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    pub async fn start(steps: Vec<Step>) -> Backend {
        // A small receive buffer (its connections inherit it): a body the
        // backend stops reading soon holds up whoever sends it.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(64 * 1024).expect("buffer");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let listener = socket.listen(128).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (record, steps) = (seen.clone(), Arc::new(steps));
        tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, conn, steps.clone(), record.clone()));
                conn += 1;
            }
        });
        Backend { addr, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// The connection the request for `path` came on (the last one).
    pub fn conn_of(&self, path: &str) -> Option<usize> {
        self.seen()
            .iter()
            .rev()
            .find(|seen| seen.path == path)
            .map(|seen| seen.conn)
    }
}

/// One backend connection: requests read one after the other (at most
/// 100), each answered, until a step closes it or wharf does.
async fn serve(
    mut stream: TcpStream,
    conn: usize,
    steps: Arc<Vec<Step>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    for served in 0..100 {
        let Some((path, length)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        seen.lock().expect("seen").push(Seen {
            conn,
            path: path.clone(),
        });
        let early = path.ends_with("/early");
        if !early && !read_exactly(&mut stream, &mut buf, length).await {
            return;
        }
        if !early && !path.ends_with("/case") {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                path.len()
            );
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        for step in steps.iter() {
            match step {
                Step::Send(bytes) => {
                    if stream.write_all(bytes).await.is_err() {
                        return;
                    }
                }
                Step::Pause(time) => tokio::time::sleep(*time).await,
                Step::Close => return,
                Step::CloseIfReused if served > 0 => return,
                Step::CloseIfReused => {}
                Step::ReadBody if early => {
                    if !read_exactly(&mut stream, &mut buf, length).await {
                        return;
                    }
                }
                Step::ReadBody => {}
                Step::Drain => {
                    for _ in 0..1_000_000 {
                        if !fill(&mut stream, &mut buf).await {
                            break;
                        }
                        buf.clear();
                    }
                }
            }
        }
        if early && !steps.iter().any(|step| matches!(step, Step::ReadBody)) {
            return;
        }
    }
}

/// Reads a request head: its method, path and `Content-Length`.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, usize)> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or_default().to_string();
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse().ok())
                .unwrap_or(0);
            return Some((path, length));
        }
        if buf.len() > 64 * 1024 || !fill(stream, buf).await {
            return None;
        }
    }
}

/// Reads and drops `length` bytes of request body.
async fn read_exactly(stream: &mut TcpStream, buf: &mut Vec<u8>, length: usize) -> bool {
    while buf.len() < length {
        if !fill(stream, buf).await {
            return false;
        }
    }
    buf.drain(..length);
    true
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(BOUND, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}
