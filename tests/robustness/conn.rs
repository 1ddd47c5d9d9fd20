//! Reading what wharf sends: a raw client connection that reads a
//! response strictly (a malformed one is reported, never guessed at), and
//! `probe`, which sends one case and says what came back in time.

use super::*;

/// A client connection and the bytes read from it but not used yet.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

enum Fill {
    More,
    Eof,
    Late,
}

/// What a client saw.
#[derive(Debug)]
pub(crate) enum Seen {
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
    pub(crate) async fn response(&mut self, deadline: Instant, whole: bool, head: bool) -> Seen {
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

pub(crate) async fn connect(addr: SocketAddr) -> Conn {
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
pub(crate) async fn probe(addr: SocketAddr, bytes: &[u8], http: bool) -> (Seen, Option<Seen>) {
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
