//! The HTTP/1.1 fast path (src/h1/) against scripted and real backends on
//! loopback: every way an upstream can frame a body, pipelining, upstream
//! keep-alive and its failures, and the hand-over to the full stack in
//! the middle of a connection.

mod support;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_with_trailers_is_relayed_and_both_connections_are_reused() {
    let (backend, accepted) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;note=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..3 {
        conn.send(&get("/chunked")).await;
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello world");
        assert!(response.header("x-request-id").is_some());
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection carried all three requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_ends_at_close_reaches_the_client_chunked_on_a_connection_that_stays_open() {
    let (backend, accepted) = scripted(
        |path| {
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close {path}")
                .into_bytes()
        },
        Close::AtOnce,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for path in ["/one", "/two"] {
        conn.send(&get(path)).await;
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            format!("until close {path}")
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "a closed upstream connection is never reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_connection_the_server_will_close_is_never_reused() {
    // The server says `Connection: close` but closes only later, so the
    // socket still looks open when the next request comes.
    let (backend, accepted) = scripted(
        |path| {
            format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{path}",
                path.len()
            )
            .into_bytes()
        },
        Close::After(Duration::from_secs(2)),
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for path in ["/one", "/two", "/three"] {
        let reply = tokio::time::timeout(
            Duration::from_secs(1),
            send(&h2, http::Method::GET, &wharf.url(path), &[], b""),
        )
        .await
        .expect("answered at once, not after the server's close");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), path);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_without_a_date_gets_one() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    let response = conn.response("GET").await;
    let date = response.header("date").expect("a Date header");
    let parsed = httpdate::parse_http_date(date).expect("an HTTP date");
    let age = std::time::SystemTime::now()
        .duration_since(parsed)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "Date {date} is now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    let mut burst = Vec::new();
    for path in ["/first", "/second", "/third"] {
        burst.extend_from_slice(&get(path));
    }
    conn.send(&burst).await;
    for path in ["/first", "/second", "/third"] {
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200);
        let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        assert_eq!(seen["path"], path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_carry_no_body_and_the_connection_goes_on() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..2 {
        conn.send(b"HEAD /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await;
        let response = conn.response("HEAD").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-length"), Some("1000"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_responses_before_the_answer_are_skipped() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_upstream_connection_the_server_closed_is_replaced_without_an_error() {
    // The backend drops every connection 100 ms after answering, like a
    // short keep-alive timeout.
    let (backend, accepted) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::After(Duration::from_millis(100)),
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..3 {
        conn.send(&get("/")).await;
        let response = conn.response("GET").await;
        assert_eq!(response.status, 200, "no 502 for a stale pooled connection");
        assert_eq!(response.body, b"ok");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// Sockets on this machine connected to `port` on 127.0.0.1 that the
/// other side closed and this side has not (TCP state `CLOSE_WAIT`).
fn close_wait_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"08")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_upstream_connection_the_server_closed_is_closed_without_new_traffic() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        Close::After(Duration::from_millis(100)),
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    // One request over HTTP/1.1 (the fast path) and one over HTTP/2 (the
    // general path): both leave a kept connection the server then closes.
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let reply = send(&h2, http::Method::GET, &wharf.url("/h2"), &[], b"").await;
    assert_eq!(reply.status, 200);
    // The backend closes both 100 ms after answering. No request comes;
    // wharf still closes its side within a few seconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        eventually(Duration::from_secs(10), || close_wait_to(backend.port())
            == 0)
        .await,
        "{} upstream sockets left in CLOSE_WAIT",
        close_wait_to(backend.port())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_upstream_answer_is_a_502_and_closes_nothing_else() {
    let (backend, _) = scripted(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok".to_vec(),
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 502);
    assert_eq!(String::from_utf8_lossy(&response.body), "502 Bad Gateway\n");
    // The client connection is still usable.
    conn.send(&get("/")).await;
    assert_eq!(conn.response("GET").await.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_from_the_client_is_honoured() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        .await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(conn.closed().await, "wharf closes after answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_moves_to_the_full_stack_when_a_request_needs_it() {
    let backend = echo().await;
    let dir = tempfile::tempdir().expect("dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("a.txt"), "a static file ".repeat(50)).expect("write");
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\
         [[site.route]]\n  path = \"/files/\"\n  static = \"{}\"\n\n\
         [upstream.app]\nservers = [\"{backend}\"]\n",
        files.display()
    );
    let wharf = Wharf::start_in(dir, "", &body);
    let mut conn = Conn::open(wharf.addr).await;
    // Relayed on the fast path...
    conn.send(&get("/api/one")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    // ...then a static file with compression asked for: the full stack.
    conn.send(b"GET /files/a.txt HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    // ...and proxying goes on on the same connection.
    conn.send(&get("/api/two")).await;
    let response = conn.response("GET").await;
    assert_eq!(response.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(seen["path"], "/api/two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_over_64_kib_streams_to_the_backend_intact() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    conn.send(&request).await;
    let response = conn.response("POST").await;
    assert_eq!(response.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(seen["body_bytes"], body.len());
    // A small body right after on the same connection.
    conn.send(b"POST /small HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let response = conn.response("POST").await;
    let seen: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(seen["path"], "/small");
    assert_eq!(seen["body_bytes"], 5);
}

/// A cache in front of wharf keeps the compressed and the plain copy of a
/// compressible answer apart: both carry `Vary: Accept-Encoding`. A tiny
/// answer is never compressed and varies on nothing. All of it on one
/// client connection and one upstream connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressible_answers_are_compressed_for_clients_that_ask_and_vary() {
    let page = "<p>a page long enough to be worth compressing</p>".repeat(20);
    let expected = page.clone();
    let (backend, accepted) = scripted(
        move |path| {
            let body = if path == "/tiny" { "ok" } else { page.as_str() };
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"v1\"\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        },
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/page")).await;
    let plain = conn.response("GET").await;
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("etag"), Some("\"v1\""));
    assert_eq!(plain.body, expected.as_bytes());
    for _ in 0..2 {
        conn.send(
            b"GET /page HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
        )
        .await;
        let gzipped = conn.response("GET").await;
        assert_eq!(gzipped.status, 200);
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
        assert_eq!(gzipped.header("vary"), Some("accept-encoding"));
        // Small and of known length: compressed whole and sent with its length.
        let length = gzipped.header("content-length").map(str::to_string);
        assert_eq!(length, Some(gzipped.body.len().to_string()));
        // Other bytes than the upstream's: the ETag is weak now.
        assert_eq!(gzipped.header("etag"), Some("W/\"v1\""));
        assert!(gzipped.header("x-request-id").is_some());
        assert!(
            gzipped.body.len() < expected.len() / 4,
            "{} bytes",
            gzipped.body.len()
        );
        assert_eq!(gunzip(&gzipped.body), expected.as_bytes());
    }
    // What browsers send: zstd, the layer's first choice among equals.
    conn.send(
        b"GET /page HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n",
    )
    .await;
    let zstd = conn.response("GET").await;
    assert_eq!(zstd.header("content-encoding"), Some("zstd"));
    let decoded = zstd::stream::decode_all(&zstd.body[..]).expect("valid zstd");
    assert_eq!(decoded, expected.as_bytes());
    conn.send(
        b"GET /page HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: br;q=1, gzip;q=0.5\r\n\r\n",
    )
    .await;
    let br = conn.response("GET").await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(unbrotli(&br.body), expected.as_bytes());
    conn.send(b"GET /tiny HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let tiny = conn.response("GET").await;
    assert_eq!(tiny.body, b"ok");
    assert_eq!(tiny.header("vary"), None);
    assert_eq!(tiny.header("content-encoding"), None);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection for all"
    );
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("valid brotli");
    out
}

/// A chunked upstream body (trailers and all), one that runs until the
/// upstream closes and one too long to compress whole are decoded,
/// compressed with the client's preferred encoding as they stream, and
/// sent chunked on a client connection that stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_and_until_close_bodies_are_compressed_too() {
    let line = "{\"id\": 1, \"name\": \"a record in a long JSON list\"},\n";
    let chunk = line.repeat(40);
    let chunked_answer = {
        let mut text = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        for _ in 0..3 {
            text.push_str(&format!("{:x};ext=1\r\n{chunk}\r\n", chunk.len()));
        }
        text.push_str("0\r\nx-sum: 1\r\n\r\n");
        text
    };
    let (chunked, chunked_accepted) =
        scripted(move |_| chunked_answer.clone().into_bytes(), Close::Never).await;
    let until_close = chunk.clone();
    let (closing, _) = scripted(
        move |_| {
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{until_close}").into_bytes()
        },
        Close::AtOnce,
    )
    .await;
    let big_body = line.repeat(7000);
    let big_expected = big_body.clone();
    let (big, big_accepted) = scripted(
        move |_| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big_body}",
                big_body.len()
            )
            .into_bytes()
        },
        Close::Never,
    )
    .await;
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/chunked\"\n  upstream = \"chunked\"\n\
         [[site.route]]\n  path = \"/close\"\n  upstream = \"closing\"\n\
         [[site.route]]\n  path = \"/big\"\n  upstream = \"big\"\n\n\
         [upstream.chunked]\nservers = [\"{chunked}\"]\n\
         [upstream.closing]\nservers = [\"{closing}\"]\n\
         [upstream.big]\nservers = [\"{big}\"]\n"
    );
    let wharf = Wharf::start("", &body);
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..2 {
        conn.send(
            b"GET /chunked HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip;q=0.5, br\r\n\r\n",
        )
        .await;
        let answer = conn.response("GET").await;
        assert_eq!(answer.header("content-encoding"), Some("br"));
        assert_eq!(unbrotli(&answer.body), chunk.repeat(3).as_bytes());
    }
    assert_eq!(
        chunked_accepted.load(Ordering::SeqCst),
        1,
        "the upstream connection is reused"
    );
    conn.send(b"GET /close HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let answer = conn.response("GET").await;
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
    assert_eq!(gunzip(&answer.body), chunk.as_bytes());
    // Over 256 KiB: streamed through the layer, not read whole.
    assert!(big_expected.len() > 256 * 1024);
    for _ in 0..2 {
        conn.send(b"GET /big HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: zstd\r\n\r\n")
            .await;
        let answer = conn.response("GET").await;
        assert_eq!(answer.header("content-encoding"), Some("zstd"));
        assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
        let decoded = zstd::stream::decode_all(&answer.body[..]).expect("valid zstd");
        assert_eq!(decoded, big_expected.as_bytes());
    }
    assert_eq!(
        big_accepted.load(Ordering::SeqCst),
        1,
        "the upstream connection is reused"
    );
    // The client connection goes on.
    conn.send(b"GET /chunked HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await;
    let answer = conn.response("GET").await;
    assert_eq!(answer.header("content-encoding"), None);
    assert_eq!(answer.body, chunk.repeat(3).as_bytes());
}

/// What must not be compressed is relayed as it is: an answer the upstream
/// already encoded, an image, a HEAD answer; and a client that refuses
/// every encoding gets the plain bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_must_not_be_compressed_are_relayed_as_they_are() {
    let text = "text that would compress well ".repeat(30);
    let expected = text.clone();
    let (backend, _) = scripted(
        move |path| {
            let (kind, encoding) = match path {
                "/encoded" => ("text/plain", "Content-Encoding: identity-ish\r\n"),
                "/image" => ("image/png", ""),
                _ => ("text/plain", ""),
            };
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n{encoding}Content-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .into_bytes()
        },
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for path in ["/encoded", "/image"] {
        conn.send(
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n").as_bytes(),
        )
        .await;
        let answer = conn.response("GET").await;
        assert_eq!(answer.body, expected.as_bytes(), "{path}");
        assert_ne!(answer.header("content-encoding"), Some("gzip"), "{path}");
    }
    conn.send(b"HEAD /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let head = conn.response("HEAD").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("vary"), Some("accept-encoding"));
    conn.send(b"GET /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip;q=0, br;q=0\r\n\r\n")
        .await;
    let refused = conn.response("GET").await;
    assert_eq!(refused.header("content-encoding"), None);
    assert_eq!(refused.body, expected.as_bytes());
    // `*` names no encoding the compression layer knows: sent as it is.
    conn.send(b"GET /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: *\r\n\r\n")
        .await;
    let star = conn.response("GET").await;
    assert_eq!(star.header("content-encoding"), None);
    assert_eq!(star.header("vary"), Some("accept-encoding"));
    assert_eq!(star.body, expected.as_bytes());
}

/// A site proxying to `addr` with `upstream` settings added.
fn proxy_with(addr: SocketAddr, upstream: &str) -> String {
    format!("{}{upstream}\n", proxy_to(addr))
}

/// The connection's idle and response deadlines share one timer (src/h1/):
/// each must still hold on its own, on one connection, whichever is longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_response_deadlines_hold_on_one_connection_in_either_order() {
    let backend = echo().await;

    // The response deadline shorter than the idle one.
    let wharf = Wharf::start(
        "idle_timeout = \"1500ms\"",
        &proxy_with(backend, "response_timeout = \"300ms\""),
    );
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let asked = std::time::Instant::now();
    conn.send(&get("/slow?sleep=3000")).await;
    assert_eq!(conn.response("GET").await.status, 504);
    // Well before the idle deadline: the response deadline was set.
    assert!(
        asked.elapsed() < Duration::from_millis(1000),
        "{:?}",
        asked.elapsed()
    );
    // The connection goes on, and the fired timer serves the next request.
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    // Idle longer than the response deadline, shorter than the idle one.
    tokio::time::sleep(Duration::from_millis(450)).await;
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let idle = std::time::Instant::now();
    assert!(
        conn.closed().await,
        "an idle connection was kept past idle_timeout"
    );
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4),
        "closed after {waited:?}, idle_timeout is 1500ms"
    );
    drop(wharf);

    // The idle deadline shorter than a slow answer: it must not cut it.
    let wharf = Wharf::start(
        "idle_timeout = \"300ms\"",
        &proxy_with(backend, "response_timeout = \"5s\""),
    );
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    conn.send(&get("/slow?sleep=900")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    conn.send(&get("/fast")).await;
    assert_eq!(conn.response("GET").await.status, 200);
    let idle = std::time::Instant::now();
    assert!(conn.closed().await);
    assert!(
        idle.elapsed() < Duration::from_secs(2),
        "{:?}",
        idle.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_1_request_without_one_host_is_a_400_not_a_guess() {
    // A site for any host, so a request without Host would otherwise be
    // served.
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let cases: [(&[u8], u16); 5] = [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            400,
        ),
        (
            b"GET / HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            400,
        ),
        // HTTP/1.0 needs none; an absolute-form target names the host.
        (b"GET / HTTP/1.0\r\n\r\n", 200),
        (b"GET http://app.test/ HTTP/1.1\r\n\r\n", 200),
    ];
    for (request, status) in cases {
        let mut conn = Conn::open(wharf.addr).await;
        conn.send(request).await;
        let response = conn.response("GET").await;
        assert_eq!(
            response.status,
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_coming_gets_a_408_and_is_logged_as_one() {
    let backend = echo().await;
    let wharf = Wharf::start("idle_timeout = \"1s\"", &proxy_to(backend));
    let requests: [&[u8]; 2] = [
        // Held whole on the fast path.
        b"POST /held HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nabc",
        // Chunked: hyper's server and the general path.
        b"POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nabc",
    ];
    for request in requests {
        let started = Instant::now();
        let mut conn = Conn::open(wharf.addr).await;
        conn.send(request).await;
        let response = conn.response("POST").await;
        let path = String::from_utf8_lossy(&request[5..13]).into_owned();
        assert_eq!(response.status, 408, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
        assert!(conn.closed().await, "{path}: the connection stays open");
    }
    let logged = eventually(Duration::from_secs(5), || {
        let log = wharf.access_log();
        ["/held", "/chunked"].iter().all(|path| {
            log.iter().any(|line| {
                line["url"]["path"] == *path && line["http"]["response"]["status_code"] == 408
            })
        })
    })
    .await;
    assert!(logged, "{:?}", wharf.access_log());
}
