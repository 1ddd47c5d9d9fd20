//! The general path's exchange with an upstream server for a request
//! without a body (nearly every HTTP/2 `GET`) or with a small one held
//! whole (`proxy::BARE_BODY`, 8 KiB): written and read on a bare
//! keep-alive socket (`h1::upstream::Idle`, shared with the fast path)
//! with the fast path's head writer, `httparse` and chunk decoder, rather
//! than through hyper's client, whose connection task, channel and
//! buffers cost about a fifth of an HTTP/2 request's instructions.
//!
//! In: the request's incoming fields (hop-by-hop ones stripped) with the
//! fields `proxy::forward` replaces (forwarded headers, ids, `Host`)
//! beside them, so nothing is inserted into a header map; an origin-form
//! target. Out: the response head as `http` types
//! (`head::map_response`) and a body that reads the rest from the socket
//! as the client takes it and puts the socket back in the pool once the
//! body ended where its framing said. Larger or streamed request bodies,
//! and upgrades, still go through hyper's client (`proxy::pool`).

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response};
use http_body::{Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::chunked::{ChunkError, Chunked};
use super::head::{self, Framing, MapParse};
use super::upstream;
use crate::balance::state::ServerState;

/// The first read buffer for a response; a body read after its head
/// gets room for this much at a time.
const BUFFER: usize = 8 * 1024;
/// Longest response head accepted (as on the fast path).
const MAX_HEAD: usize = 64 * 1024;
/// Room asked for before each read of a long body.
const BODY_READ: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing was sent: the connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("sending the request: {0}")]
    Write(io::Error),
    #[error("reading the response head: {0}")]
    Read(io::Error),
    #[error("the connection closed before a complete response head")]
    Closed,
    #[error(transparent)]
    Head(#[from] head::ResponseError),
}

impl ClientError {
    /// Whether nothing reached the server.
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect(_))
    }
}

/// Why a response body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the response body: {0}")]
    Read(io::Error),
    #[error("the upstream closed the connection {left} bytes before the body's end")]
    Truncated { left: u64 },
    #[error("the upstream closed the connection inside a chunked body")]
    TruncatedChunked,
    #[error("malformed chunked body: {0}")]
    Chunk(#[from] ChunkError),
}

/// The request head to write.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    pub method: &'a Method,
    /// Origin-form target.
    pub target: &'a [u8],
    /// Sent first, as `Host`; the fields of `headers` named `Host` are not.
    pub host: &'a [u8],
    /// The incoming fields, hop-by-hop ones already removed.
    pub headers: &'a HeaderMap,
    /// Names in `headers` not to send: `extra` replaces them.
    pub skip: &'a (dyn Fn(&HeaderName) -> bool + Sync),
    /// Fields sent after `headers`.
    pub extra: &'a [(&'a HeaderName, &'a HeaderValue)],
    /// The whole request body, sent with its length (small: see
    /// `proxy::BARE_BODY`).
    pub body: &'a [u8],
}

/// Writes `request`'s head: origin-form, HTTP/1.1.
fn write_head(out: &mut Vec<u8>, request: &Head<'_>) {
    let field = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    field(out, b"host", request.host);
    let mut length = false;
    for (name, value) in request.headers {
        if *name == header::HOST || (request.skip)(name) {
            continue;
        }
        if *name == header::CONTENT_LENGTH {
            // Written below, from the body as it is held.
            length = true;
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in request.extra {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    // An empty body gets a length when the client sent one, and for the
    // methods some servers refuse without one (411).
    if length
        || !request.body.is_empty()
        || matches!(*request.method, Method::POST | Method::PUT | Method::PATCH)
    {
        let mut digits = itoa::Buffer::new();
        field(
            out,
            b"content-length",
            digits.format(request.body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request.body);
}

/// Sends `request` (its body held whole) to the server of `state`, on an
/// idle connection when there is one, and reads the response head. A
/// pooled connection the server closed meanwhile is replaced by a new one
/// when that cannot make an effect happen twice: when writing to it
/// failed, or when it closed without a byte of answer to an idempotent
/// request.
pub async fn send(
    state: &Arc<ServerState>,
    request: Head<'_>,
    connect_timeout: Duration,
) -> Result<Response<BareBody>, ClientError> {
    let method = request.method;
    let mut out = Vec::with_capacity(512);
    write_head(&mut out, &request);
    let head_request = *method == Method::HEAD;
    let idempotent = method.is_idempotent();

    let mut pooled_allowed = true;
    'connection: loop {
        let pooled = if pooled_allowed {
            state.idle.take(Instant::now())
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => Box::pin(upstream::connect(state.addr, connect_timeout))
                .await
                .map_err(ClientError::Connect)?,
        };
        if let Err(error) = conn.write_all(&out).await {
            if reused {
                pooled_allowed = false;
                continue 'connection;
            }
            return Err(ClientError::Write(error));
        }
        let mut buf = BytesMut::with_capacity(BUFFER);
        loop {
            if !buf.is_empty() {
                match head::map_response(&mut buf, MAX_HEAD, head_request)? {
                    MapParse::Complete(mapped) => {
                        let mut body = BareBody {
                            conn: Some(conn),
                            buf,
                            left: match mapped.framing {
                                Framing::Empty => Left::Done,
                                Framing::Length(0) => Left::Done,
                                Framing::Length(n) => Left::Length(n),
                                Framing::Chunked => {
                                    Left::Chunked(Box::new(Chunked::keeping_trailers()))
                                }
                                Framing::Close => Left::Close,
                            },
                            reusable: mapped.reusable,
                            state: state.clone(),
                        };
                        if matches!(body.left, Left::Done) {
                            body.finish();
                        }
                        return Ok(Response::from_parts(mapped.parts, body));
                    }
                    MapParse::Informational(len) => {
                        buf.advance(len);
                        continue;
                    }
                    MapParse::Partial => {}
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(BUFFER);
            }
            match tokio::io::AsyncReadExt::read_buf(&mut conn, &mut buf).await {
                Ok(n) if n > 0 => {}
                result => {
                    // Closed before a single byte of answer: on a reused
                    // connection this is the server dropping an idle
                    // connection, not a failure of the request.
                    if reused && buf.is_empty() && idempotent {
                        pooled_allowed = false;
                        continue 'connection;
                    }
                    return Err(match result {
                        Err(error) => ClientError::Read(error),
                        _ => ClientError::Closed,
                    });
                }
            }
        }
    }
}

/// What is left of a response body.
#[derive(Debug)]
enum Left {
    /// This many bytes (some may be in the buffer already).
    Length(u64),
    Chunked(Box<Chunked>),
    /// Until the server closes the connection.
    Close,
    /// The body's data ended; its trailer fields are next.
    Trailers(http::HeaderMap),
    Done,
}

/// A response body read from its upstream socket as the client takes it.
/// The socket goes back to the server's idle pool when the body ended
/// where its framing said and nothing followed it; dropped earlier (the
/// client left), the socket is closed.
#[derive(Debug)]
pub struct BareBody {
    conn: Option<TcpStream>,
    /// Bytes read from the socket and not yet handed on.
    buf: BytesMut,
    left: Left,
    reusable: bool,
    state: Arc<ServerState>,
}

impl BareBody {
    /// The body ended: the socket goes back to the pool when it can carry
    /// another request.
    fn finish(&mut self) {
        self.left = Left::Done;
        if let Some(conn) = self.conn.take() {
            if self.reusable && self.buf.is_empty() {
                self.state.idle.put(conn, Instant::now());
            }
        }
    }

    /// Reads more from the socket into `buf`; `Ok(0)` at its end. Through
    /// `AsyncRead`, which forgets the socket's readiness after a short
    /// read, so that the idle pool's check sees a quiet socket as open.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(BODY_READ);
        }
        tokio_util::io::poll_read_buf(Pin::new(conn), cx, &mut self.buf)
    }

    /// The chunk data in the buffer, without the framing (`None` when the
    /// buffer held framing only), and whether the body ended. One piece of
    /// data is handed on as a slice of the buffer; several (small chunks
    /// read at once) are joined.
    fn decode(
        buf: &mut BytesMut,
        decoder: &mut Chunked,
    ) -> Result<(Option<Bytes>, bool), ChunkError> {
        let mut first: Option<Range<usize>> = None;
        let mut joined: Option<BytesMut> = None;
        let input: &[u8] = buf;
        let (used, done) = decoder.decode(input, |piece| {
            if piece.is_empty() {
                return;
            }
            if let Some(joined) = joined.as_mut() {
                joined.extend_from_slice(&input[piece]);
            } else if let Some(first) = first.take() {
                let mut both = BytesMut::with_capacity(first.len() + piece.len());
                both.extend_from_slice(&input[first]);
                both.extend_from_slice(&input[piece]);
                joined = Some(both);
            } else {
                first = Some(piece);
            }
        })?;
        let consumed = buf.split_to(used).freeze();
        let data = match (joined, first) {
            (Some(joined), _) => Some(joined.freeze()),
            (None, Some(first)) => Some(consumed.slice(first)),
            (None, None) => None,
        };
        Ok((data, done))
    }
}

impl http_body::Body for BareBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.left {
                Left::Done => return Poll::Ready(None),
                Left::Trailers(trailers) => {
                    let trailers = std::mem::take(trailers);
                    this.left = Left::Done;
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Left::Length(left) => {
                    if !this.buf.is_empty() {
                        let take = this
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        let data = this.buf.split_to(take).freeze();
                        *left -= take as u64;
                        if *left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let left = *left;
                    match ready!(this.poll_fill(cx)) {
                        Ok(0) => {
                            this.reusable = false;
                            this.finish();
                            return Poll::Ready(Some(Err(BodyError::Truncated { left })));
                        }
                        Ok(_) => {}
                        Err(error) => return Poll::Ready(Some(Err(this.failed(error)))),
                    }
                }
                Left::Chunked(decoder) => {
                    if !this.buf.is_empty() {
                        let decoded = BareBody::decode(&mut this.buf, decoder);
                        match decoded {
                            Ok((data, done)) => {
                                if done {
                                    let trailers = decoder.trailers();
                                    this.finish();
                                    if let Some(trailers) = trailers {
                                        this.left = Left::Trailers(trailers);
                                    }
                                }
                                match data {
                                    Some(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                                    None if done => continue,
                                    None => {}
                                }
                            }
                            Err(error) => {
                                this.reusable = false;
                                this.finish();
                                return Poll::Ready(Some(Err(error.into())));
                            }
                        }
                        if !this.buf.is_empty() {
                            continue;
                        }
                    }
                    match ready!(this.poll_fill(cx)) {
                        Ok(0) => {
                            this.reusable = false;
                            this.finish();
                            return Poll::Ready(Some(Err(BodyError::TruncatedChunked)));
                        }
                        Ok(_) => {}
                        Err(error) => return Poll::Ready(Some(Err(this.failed(error)))),
                    }
                }
                Left::Close => {
                    if !this.buf.is_empty() {
                        let data = this.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    match ready!(this.poll_fill(cx)) {
                        Ok(0) => {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Ok(_) => {}
                        Err(error) => return Poll::Ready(Some(Err(this.failed(error)))),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.left, Left::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Left::Length(left) => SizeHint::with_exact(left),
            Left::Done | Left::Trailers(_) => SizeHint::with_exact(0),
            Left::Chunked(_) | Left::Close => SizeHint::default(),
        }
    }
}

impl BareBody {
    /// A read error: the socket is closed, never reused.
    fn failed(&mut self, error: io::Error) -> BodyError {
        self.reusable = false;
        self.finish();
        BodyError::Read(error)
    }
}
