//! One attempt on an upstream server: the request sent on a pooled or new
//! connection (its body held whole, or streamed from the client), the
//! response head read, all within the response deadline on the
//! connection's timer; and wharf's own answer when the last attempt failed.
//! A server that answers while a streamed body is still going out gets
//! no more of it: its answer is relayed, and neither connection carries
//! another request.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::copy::write_out;
use super::{Context, LARGE_BUFFER, MAX_RESPONSE_HEAD};
use crate::balance::Member;
use crate::h1::head::{self, Extra, ResponseHead, ResponseParse};
use crate::h1::spare::{self, Spare, UPSTREAM_BUFFER};
use crate::h1::upstream;
use crate::observe::request::{self, Started};
use crate::server::conn::Transport;

/// The request body.
pub(super) enum Payload {
    /// Read whole; can be sent again.
    Held,
    /// Copied from the client while sending; `left` bytes not yet read.
    Streaming { left: u64 },
}

impl Payload {
    pub(super) fn replayable(&self) -> bool {
        matches!(self, Payload::Held)
    }
}

/// A response head from the upstream, with the connection it came on.
pub(super) struct Answer {
    pub(super) conn: TcpStream,
    /// Bytes read after the head (the start of the body).
    pub(super) buf: BytesMut,
    pub(super) head: ResponseHead,
    /// The head to send to the client.
    pub(super) out: Vec<u8>,
}

/// Why an attempt got no response head.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Failed(String),
    #[error("the client went away while sending its body")]
    ClientGone,
}

/// The deadline passed before the upstream answered.
pub(super) struct TimedOut;

/// `future`'s output, or `TimedOut` once `deadline` passes, on the
/// connection's `timer` (which `Timeout` would make anew for each request).
pub(super) async fn within<F: Future>(
    mut timer: Pin<&mut Sleep>,
    deadline: tokio::time::Instant,
    future: F,
) -> Result<F::Output, TimedOut> {
    timer.as_mut().reset(deadline);
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        timer.as_mut().poll(cx).map(|()| Err(TimedOut))
    })
    .await
}

/// Answers wharf's own 502 or 504 after the last attempt failed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fail<S: Transport>(
    io: &mut S,
    status: StatusCode,
    started: Started,
    member: &Member,
    extra: &Extra<'_>,
    payload: &Payload,
    keep_alive: bool,
    cx: &Context,
) -> bool {
    let close = !keep_alive || matches!(payload, Payload::Streaming { left } if *left > 0);
    let mut out = Vec::new();
    head::write_status(&mut out, status, &Extra { close, ..*extra }, &[]);
    let _answered = request::answered(started, status.as_u16(), Some(member.addr));
    write_out(io, &out, cx.idle_timeout).await && !close
}

/// Reads a body of `length` bytes (the start may already be in `cbuf`).
pub(super) async fn read_body<S: AsyncRead + Unpin>(
    io: &mut S,
    cbuf: &mut BytesMut,
    length: u64,
    timeout: Duration,
) -> Result<Bytes, BodyStop> {
    let length = usize::try_from(length).map_err(|_| BodyStop::Gone)?;
    while cbuf.len() < length {
        cbuf.reserve(length - cbuf.len());
        match tokio::time::timeout(timeout, io.read_buf(cbuf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return Err(BodyStop::Gone),
            Err(_) => return Err(BodyStop::TimedOut),
        }
    }
    Ok(cbuf.split_to(length).freeze())
}

/// Why a held request body was not read whole.
pub(super) enum BodyStop {
    /// The client closed the connection, or reading failed.
    Gone,
    /// Nothing came for the idle timeout.
    TimedOut,
}

/// One attempt on `member`: sends the request and reads the response head.
/// A pooled connection the server closed meanwhile is replaced by a new
/// one when that cannot send the request twice.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send<S: Transport>(
    member: &Member,
    started: Instant,
    upstream_head: &[u8],
    payload: &mut Payload,
    client: Option<(&mut S, &mut BytesMut, Duration)>,
    extra: &Extra<'_>,
    connect_timeout: Duration,
    idempotent: bool,
) -> Result<Answer, SendError> {
    let mut pooled_allowed = true;
    let mut client = client;
    'connection: loop {
        let pooled = if pooled_allowed {
            member.state.idle.take(started)
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            // Boxed, like the other rare paths below: a future is as large
            // as its largest await point, and the whole request future is
            // moved into its box once per request.
            None => Box::pin(upstream::connect(member.addr, connect_timeout))
                .await
                .map_err(SendError::Connect)?,
        };
        if let Err(error) = conn.write_all(upstream_head).await {
            if reused && payload.replayable() {
                pooled_allowed = false;
                continue 'connection;
            }
            return Err(SendError::Failed(format!("sending the request: {error}")));
        }
        let mut buf = spare::take(Spare::Upstream);
        // The server answered before the whole body went out.
        let mut early = false;
        if let (Payload::Streaming { left }, Some((io, cbuf, timeout))) =
            (&mut *payload, &mut client)
        {
            early = Box::pin(stream_body(
                *io, cbuf, &mut conn, &mut buf, left, *timeout, extra,
            ))
            .await?;
        }
        // The rest of the client's body is never read: its connection
        // closes after the answer.
        let closing = Extra {
            close: true,
            ..*extra
        };
        let extra = if early { &closing } else { extra };

        let mut out = Vec::with_capacity(512);
        loop {
            if !buf.is_empty() {
                out.clear();
                match head::parse_response(&buf, MAX_RESPONSE_HEAD, extra, &mut out) {
                    Ok(ResponseParse::Complete(mut head)) => {
                        // The server is owed the rest of the body: the
                        // connection is in no state for another request.
                        head.reusable &= !early;
                        return Ok(Answer {
                            conn,
                            buf,
                            head,
                            out,
                        });
                    }
                    Ok(ResponseParse::Informational(len)) => {
                        buf.advance(len);
                        continue;
                    }
                    Ok(ResponseParse::Partial) => {}
                    Err(error) => return Err(SendError::Failed(error.to_string())),
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(UPSTREAM_BUFFER);
            }
            match conn.read_buf(&mut buf).await {
                Ok(n) if n > 0 => {}
                result => {
                    // Closed before a single byte of answer: on a reused
                    // connection this is the server dropping an idle
                    // connection, not a failure of the request.
                    if reused && buf.is_empty() && payload.replayable() && idempotent {
                        pooled_allowed = false;
                        continue 'connection;
                    }
                    let why = match result {
                        Err(error) => error.to_string(),
                        _ => "connection closed before a complete response head".to_string(),
                    };
                    return Err(SendError::Failed(why));
                }
            }
        }
    }
}

/// Completes when the client closes its side (or the connection fails)
/// while its request is answered. Pipelined bytes are kept in `cbuf`.
pub(super) async fn client_gone<S: AsyncRead + Unpin>(io: &mut S, cbuf: &mut BytesMut) {
    loop {
        if cbuf.len() >= LARGE_BUFFER {
            // Enough read ahead: stop reading until this request is done.
            return std::future::pending().await;
        }
        cbuf.reserve(4096);
        match io.read_buf(cbuf).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Copies the rest of a large request body from the client to the server,
/// watching the server meanwhile: one that answers early (a 413, say)
/// may stop reading the body, and its answer is what the client must
/// get, not a timeout. Returns true when the server answered (or
/// closed, or sent something malformed) before the body's end: the rest
/// is not sent, `left` says how much, and what it sent is in `buf`.
async fn stream_body<S: AsyncRead + Unpin>(
    io: &mut S,
    cbuf: &mut BytesMut,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    left: &mut u64,
    timeout: Duration,
    extra: &Extra<'_>,
) -> Result<bool, SendError> {
    let failed =
        |error: std::io::Error| SendError::Failed(format!("sending the request body: {error}"));
    while *left > 0 {
        if cbuf.is_empty() {
            cbuf.reserve(LARGE_BUFFER);
            let heard = std::future::poll_fn(|cx| poll_answered(conn, buf, extra, cx));
            tokio::select! {
                read = tokio::time::timeout(timeout, io.read_buf(cbuf)) => match read {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Err(SendError::ClientGone),
                },
                () = heard => return Ok(true),
            }
        }
        let take = cbuf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
        let written = std::future::poll_fn(|cx| {
            if poll_answered(conn, buf, extra, cx).is_ready() {
                return Poll::Ready(Ok(None));
            }
            Pin::new(&mut *conn)
                .poll_write(cx, &cbuf[..take])
                .map(|written| written.map(Some))
        })
        .await
        .map_err(failed)?;
        match written {
            None => return Ok(true),
            Some(0) => return Err(failed(std::io::ErrorKind::WriteZero.into())),
            Some(n) => {
                cbuf.advance(n);
                *left -= n as u64;
            }
        }
    }
    Ok(false)
}

/// Ready once the server has answered while the request body is still
/// going out: a whole final head in `buf` (1xx answers are dropped from
/// it), or bytes that are none, or the connection closed. Pending, with
/// the task woken when the server sends more, otherwise.
fn poll_answered(
    conn: &TcpStream,
    buf: &mut BytesMut,
    extra: &Extra<'_>,
    cx: &mut std::task::Context<'_>,
) -> Poll<()> {
    // Each round reads until the socket is empty, which makes the next
    // `poll_read_ready` register for more.
    while conn.poll_read_ready(cx).is_ready() {
        loop {
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(UPSTREAM_BUFFER);
            }
            match conn.try_read_buf(buf) {
                Ok(0) => return Poll::Ready(()),
                Ok(_) => loop {
                    match head::parse_response(buf, MAX_RESPONSE_HEAD, extra, &mut Vec::new()) {
                        Ok(ResponseParse::Informational(len)) => buf.advance(len),
                        Ok(ResponseParse::Partial) => break,
                        Ok(ResponseParse::Complete(_)) | Err(_) => return Poll::Ready(()),
                    }
                },
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return Poll::Ready(()),
            }
        }
    }
    Poll::Pending
}
