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
//!
//! Writing the request and reading the answer's head is here; the body
//! read from the socket afterwards is `client/body.rs`.

mod body;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response};
use tokio::io::AsyncWriteExt;

use super::chunked::Chunked;
use super::head::{self, Framing, MapParse};
use super::upstream;
use crate::balance::state::ServerState;
use body::Left;

pub use body::{BareBody, BodyError};

/// The first read buffer for a response; a body read after its head
/// gets room for this much at a time.
const BUFFER: usize = 8 * 1024;
/// Longest response head accepted (as on the fast path).
const MAX_HEAD: usize = 64 * 1024;

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
