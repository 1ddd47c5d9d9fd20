//! One request relayed on the fast path: the same decisions as
//! `proxy::forward` (server choice, retries only when safe, passive health,
//! forwarded headers, request ids, metrics, access log), over a raw
//! keep-alive connection from `upstream::Idle`.
//!
//! The upstream's response head is rewritten once (`head::parse_response`)
//! and the body is copied as it arrives: a `Content-Length` body byte for
//! byte, a chunked body as it is (`chunked.rs` finds its end), a body that
//! runs until the server closes re-chunked so the client connection stays
//! open. Small bodies leave in the same write as the head. A compressible
//! answer to a client that accepts compression is compressed: whole, in
//! one call, when it is short and its length known (`copy_encoded`), else
//! decoded and streamed through the sites' compression layer
//! (`copy_compressed`), then sent chunked.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::chunked::Chunked;
use super::head::{self, Extra, Framing, Kind, RequestHead, ResponseHead, ResponseParse};
use super::spare::{self, Spare, UPSTREAM_BUFFER};
use super::{now_or_pending, upstream, Client, Target};
use crate::balance::{Member, Pick, Tried};
use crate::encode;
use crate::observe::access::Entry;
use crate::observe::request::{self, RouteSlot, Started};
use crate::observe::{metrics, trace};
use crate::proxy::headers;
use crate::server::conn::Transport;
use crate::snapshot::Snapshot;

/// Request bodies up to this size are read whole so the request can be
/// retried on another server (the same limit as `proxy::forward`).
const REPLAYABLE_BODY: u64 = 64 * 1024;
/// Read buffer once a body turns out to be large.
const LARGE_BUFFER: usize = 64 * 1024;
/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// What the connection loop passes in. Owned, so the request's future
/// is built straight into its box (a wrapper future borrowing these would
/// hold the relay future twice over).
pub(crate) struct Context {
    pub client: Client,
    pub snapshot: Arc<Snapshot>,
    pub site: usize,
    pub hsts: Option<HeaderValue>,
    /// Longest wait for the client to send or take bytes.
    pub idle_timeout: Duration,
    /// wharf is shutting down: close after this response.
    pub closing: bool,
}

/// The request body.
enum Payload {
    /// Read whole; can be sent again.
    Held,
    /// Copied from the client while sending; `left` bytes not yet read.
    Streaming { left: u64 },
}

impl Payload {
    fn replayable(&self) -> bool {
        matches!(self, Payload::Held)
    }
}

/// A response head from the upstream, with the connection it came on.
struct Answer {
    conn: TcpStream,
    /// Bytes read after the head (the start of the body).
    buf: BytesMut,
    head: ResponseHead,
    /// The head to send to the client.
    out: Vec<u8>,
}

/// Why an attempt got no response head.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Failed(String),
    #[error("the client went away while sending its body")]
    ClientGone,
}

/// Relays one request and its response. Returns whether the client
/// connection can carry another request.
pub(crate) async fn relay<S: Transport>(
    io: &mut S,
    cbuf: &mut BytesMut,
    head: RequestHead,
    target: Target,
    cx: Context,
    mut timer: Pin<&mut Sleep>,
) -> bool {
    let (target, cx) = (&target, &cx);
    let start = Instant::now();
    let in_flight = metrics::global().request_started();
    let snapshot = &*cx.snapshot;
    let peer = cx.client.peer;
    let peer_trusted = snapshot.is_trusted(peer.ip());
    let mut upstream_head = Vec::with_capacity(head.raw.len() + 256);
    let (ids, client_ip) = if head.plain && !peer_trusted {
        let chosen = trace::choose(
            head.first(Kind::RequestId)
                .and_then(|field| head.header_value(field))
                .as_ref(),
            single_traceparent(&head).as_ref(),
        );
        head::write_forwarded(
            &mut upstream_head,
            &head,
            peer.ip(),
            cx.client.scheme,
            &chosen,
        );
        (chosen.ids, peer.ip())
    } else {
        rewrite(&mut upstream_head, &head, &cx.client, |ip| {
            snapshot.is_trusted(ip)
        })
    };
    let request_id = ids.request_id.clone();
    let started = started(
        &head,
        cx,
        (start, in_flight),
        ids,
        client_ip,
        &target.metrics,
    );

    let mut payload = if head.content_length <= REPLAYABLE_BODY {
        match read_body(io, cbuf, head.content_length, cx.idle_timeout).await {
            Ok(body) => upstream_head.extend_from_slice(&body),
            // The client left: `started` records a 499.
            Err(BodyStop::Gone) => return false,
            Err(BodyStop::TimedOut) => {
                // As nginx after `client_body_timeout`: a 408, and the
                // connection closes (the rest of the body may still come).
                let mut out = Vec::new();
                head::write_status(
                    &mut out,
                    StatusCode::REQUEST_TIMEOUT,
                    &Extra {
                        request_id: &request_id,
                        hsts: cx.hsts.as_ref(),
                        close: true,
                        head_request: false,
                        compress: false,
                    },
                    &[],
                );
                let _answered = request::answered(started, 408, None);
                let _ = write_out(io, &out, cx.idle_timeout).await;
                return false;
            }
        }
        Payload::Held
    } else {
        Payload::Streaming {
            left: head.content_length,
        }
    };

    let keep_alive = !head.close && !cx.closing;
    let head_request = head.method == Method::HEAD;
    let idempotent = matches!(
        head.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    let extra = Extra {
        request_id: &request_id,
        hsts: cx.hsts.as_ref(),
        close: !keep_alive,
        head_request,
        compress: head.compress,
    };
    // A body not read to the end leaves the connection unusable.
    let usable_after = |payload: &Payload| {
        keep_alive && !matches!(payload, Payload::Streaming { left } if *left > 0)
    };

    let pool = &target.pool;
    pool.budget.deposit();
    let mut tried = Tried::default();
    let mut attempt = 0u32;
    loop {
        let index = match pool.pick(client_ip, &tried) {
            Pick::Server(index) => index,
            Pick::Unavailable { retry_after } => {
                let close = !usable_after(&payload);
                let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let mut out = Vec::new();
                head::write_status(
                    &mut out,
                    StatusCode::SERVICE_UNAVAILABLE,
                    &Extra { close, ..extra },
                    &[("retry-after", &seconds.to_string())],
                );
                let _answered = request::answered(started, 503, None);
                return write_out(io, &out, cx.idle_timeout).await && !close;
            }
        };
        tried.insert(index);
        let member = &pool.members[index];
        let server_in_flight = member.state.start_request();
        // The first attempt starts with the request: one clock read less.
        let sent = if attempt == 0 { start } else { Instant::now() };
        let deadline = tokio::time::Instant::from_std(sent) + pool.settings.response_timeout;
        let connect_timeout = pool.settings.connect_timeout;
        let outcome = if payload.replayable() {
            // The whole request is read: watch the client meanwhile, and
            // stop (a 499) if it goes away, as hyper does.
            let sending = send::<S>(
                member,
                sent,
                &upstream_head,
                &mut payload,
                None,
                &extra,
                connect_timeout,
                idempotent,
            );
            tokio::select! {
                outcome = within(timer.as_mut(), deadline, sending) => outcome,
                () = client_gone(io, cbuf) => return false,
            }
        } else {
            let client = Some((&mut *io, &mut *cbuf, cx.idle_timeout));
            let sending = send(
                member,
                sent,
                &upstream_head,
                &mut payload,
                client,
                &extra,
                connect_timeout,
                idempotent,
            );
            within(timer.as_mut(), deadline, sending).await
        };

        let (success, safe_to_retry) = match &outcome {
            Ok(Ok(answer)) => {
                let status = answer.head.status;
                (status < 500, idempotent && matches!(status, 502..=504))
            }
            Ok(Err(SendError::ClientGone)) => return false,
            Ok(Err(SendError::Connect(_))) => (false, true),
            Ok(Err(SendError::Failed(_))) | Err(_) => (false, idempotent),
        };
        pool.record(index, success);
        let answered_at = Instant::now();
        if let Ok(Ok(_)) = &outcome {
            pool.metrics
                .answered(index, answered_at.saturating_duration_since(sent));
        }
        let wanted = !success && safe_to_retry && payload.replayable();
        if let Some(delay) = pool.retry(index, &mut attempt, wanted) {
            drop(outcome);
            drop(server_in_flight);
            Box::pin(tokio::time::sleep(delay)).await;
            continue;
        }

        let answer = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                tracing::warn!(
                    upstream = %pool.name,
                    server = %member.addr,
                    connect = matches!(error, SendError::Connect(_)),
                    error = %error,
                    "upstream request failed"
                );
                return Box::pin(fail(
                    io,
                    StatusCode::BAD_GATEWAY,
                    started,
                    member,
                    &extra,
                    &payload,
                    keep_alive,
                    cx,
                ))
                .await;
            }
            Err(_) => {
                tracing::warn!(
                    upstream = %pool.name,
                    server = %member.addr,
                    timeout = ?pool.settings.response_timeout,
                    "upstream did not answer in time"
                );
                return Box::pin(fail(
                    io,
                    StatusCode::GATEWAY_TIMEOUT,
                    started,
                    member,
                    &extra,
                    &payload,
                    keep_alive,
                    cx,
                ))
                .await;
            }
        };

        let Answer {
            mut conn,
            mut buf,
            head: response,
            out,
        } = answer;
        let mut answered = request::answered(started, response.status, Some(member.addr));
        let read_timeout = pool.settings.response_timeout;
        if !response.compress {
            buf.advance(response.len);
        }
        let copied = match response.framing {
            _ if response.compress => {
                let accept = head
                    .fields
                    .iter()
                    .filter(|field| head.name(field).eq_ignore_ascii_case(b"accept-encoding"));
                let timeouts = (read_timeout, cx.idle_timeout);
                match response.framing {
                    Framing::Length(length) if length <= encode::ONE_SHOT => {
                        let encoding = encode::negotiate(accept.map(|field| head.value(field)));
                        Box::pin(copy_encoded(
                            io,
                            &mut conn,
                            &mut buf,
                            &response,
                            (length, encoding),
                            &extra,
                            timeouts,
                            &mut answered,
                        ))
                        .await
                    }
                    _ => {
                        Box::pin(copy_compressed(
                            io,
                            &mut conn,
                            &mut buf,
                            &response,
                            accept
                                .filter_map(|field| head.header_value(field))
                                .collect(),
                            &extra,
                            timeouts,
                            &mut answered,
                        ))
                        .await
                    }
                }
            }
            Framing::Empty => write_out(io, &out, cx.idle_timeout).await,
            Framing::Length(length) => {
                copy_length(
                    io,
                    &mut conn,
                    &mut buf,
                    out,
                    length,
                    read_timeout,
                    cx.idle_timeout,
                    &mut answered,
                )
                .await
            }
            Framing::Chunked => {
                Box::pin(copy_chunked(
                    io,
                    &mut conn,
                    &mut buf,
                    out,
                    read_timeout,
                    cx.idle_timeout,
                    &mut answered,
                ))
                .await
            }
            Framing::Close => {
                Box::pin(copy_until_close(
                    io,
                    &mut conn,
                    &mut buf,
                    out,
                    read_timeout,
                    cx.idle_timeout,
                    &mut answered,
                ))
                .await
            }
        };
        if copied && response.reusable && buf.is_empty() {
            // Idle since its response ended; the clock read at the head
            // is close enough for a 90 s limit.
            member.state.idle.put(conn, answered_at);
        }
        spare::give(Spare::Upstream, buf);
        drop(server_in_flight);
        let flushed = flush(io, cx.idle_timeout).await;
        return copied && flushed && usable_after(&payload);
    }
}

/// The deadline passed before the upstream answered.
struct TimedOut;

/// `future`'s output, or `TimedOut` once `deadline` passes, on the
/// connection's `timer` (which `Timeout` would make anew for each request).
async fn within<F: Future>(
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

/// Flushes what was written to the client (TLS holds bytes), waiting at
/// most `timeout`, and the clock read only if it must wait.
pub(super) async fn flush<S: AsyncWrite + Unpin>(io: &mut S, timeout: Duration) -> bool {
    let flush = io.flush();
    tokio::pin!(flush);
    match now_or_pending(flush.as_mut()).await {
        Some(flushed) => flushed.is_ok(),
        None => matches!(tokio::time::timeout(timeout, flush).await, Ok(Ok(()))),
    }
}

/// Opens the request's record, as the general path's `conn::handle`
/// does: counted in flight since `start`, under the route of `metrics`,
/// and logged when access logging is on.
pub(super) fn started(
    head: &RequestHead,
    cx: &Context,
    (start, in_flight): (Instant, metrics::RequestGuard),
    ids: trace::Ids,
    client_ip: std::net::IpAddr,
    metrics: &metrics::RouteMetrics,
) -> Started {
    let snapshot = &*cx.snapshot;
    let route = RouteSlot::default();
    route.set(metrics);
    let entry = snapshot.access.enabled().then(|| Entry {
        start,
        timestamp: SystemTime::now(),
        method: head.method.clone(),
        version: http::Version::HTTP_11,
        path: head.path().to_string(),
        query: head.query().map(str::to_string),
        host: Some(crate::route::strip_port(head.host()).to_string()),
        client: cx.client.peer,
        client_ip,
        user_agent: head
            .first(Kind::UserAgent)
            .and_then(|field| std::str::from_utf8(head.value(field)).ok())
            .map(str::to_string),
        referrer: head
            .first(Kind::Referer)
            .and_then(|field| std::str::from_utf8(head.value(field)).ok())
            .map(str::to_string),
        ids: Some(ids.clone()),
    });
    Started {
        start,
        in_flight,
        ids,
        route,
        fallback: snapshot.unrouted.get(Some(cx.site)).clone(),
        log: entry.map(|entry| (snapshot.access.clone(), entry)),
    }
}

/// The request's `traceparent` when it has exactly one.
pub(super) fn single_traceparent(head: &RequestHead) -> Option<HeaderValue> {
    let mut parents = head
        .fields
        .iter()
        .filter(|field| field.kind == Kind::Traceparent);
    match (parents.next(), parents.next()) {
        (Some(field), None) => head.header_value(field),
        _ => None,
    }
}

/// Writes the upstream head through a `HeaderMap` and `proxy::headers`:
/// for a trusted proxy's requests (its forwarded headers are extended)
/// and for heads with hop-by-hop headers to remove. Returns the ids and
/// the client's address.
fn rewrite(
    out: &mut Vec<u8>,
    head: &RequestHead,
    client: &Client,
    is_trusted: impl Fn(std::net::IpAddr) -> bool,
) -> (trace::Ids, std::net::IpAddr) {
    let peer = client.peer.ip();
    let mut headers = head.header_map();
    let ids = trace::take_or_create(&mut headers);
    let peer_trusted = is_trusted(peer);
    let client_ip = headers::client_ip(&headers, peer, &is_trusted);
    let host = headers.get(header::HOST).cloned();
    let peer_header = HeaderValue::from_str(&peer.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    headers::strip_hop_by_hop(&mut headers);
    headers::set_forwarded(
        &mut headers,
        headers::Forwarding {
            peer,
            peer_trusted,
            scheme: client.scheme,
            host: host.as_ref(),
            peer_header: &peer_header,
        },
        client_ip,
    );
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    head::write_request(out, &head.method, head.target.as_str().as_bytes(), &headers);
    (ids, client_ip)
}

/// Answers wharf's own 502 or 504 after the last attempt failed.
#[allow(clippy::too_many_arguments)]
async fn fail<S: Transport>(
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
async fn read_body<S: AsyncRead + Unpin>(
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
enum BodyStop {
    /// The client closed the connection, or reading failed.
    Gone,
    /// Nothing came for the idle timeout.
    TimedOut,
}

/// One attempt on `member`: sends the request and reads the response head.
/// A pooled connection the server closed meanwhile is replaced by a new
/// one when that cannot send the request twice.
#[allow(clippy::too_many_arguments)]
async fn send<S: Transport>(
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
        if let (Payload::Streaming { left }, Some((io, cbuf, timeout))) =
            (&mut *payload, &mut client)
        {
            Box::pin(stream_body(*io, cbuf, &mut conn, left, *timeout)).await?;
        }

        let mut buf = spare::take(Spare::Upstream);
        let mut out = Vec::with_capacity(512);
        loop {
            if !buf.is_empty() {
                out.clear();
                match head::parse_response(&buf, MAX_RESPONSE_HEAD, extra, &mut out) {
                    Ok(ResponseParse::Complete(head)) => {
                        return Ok(Answer {
                            conn,
                            buf,
                            head,
                            out,
                        })
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
async fn client_gone<S: AsyncRead + Unpin>(io: &mut S, cbuf: &mut BytesMut) {
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

/// Copies the rest of a large request body from the client to the server.
async fn stream_body<S: AsyncRead + Unpin>(
    io: &mut S,
    cbuf: &mut BytesMut,
    conn: &mut TcpStream,
    left: &mut u64,
    timeout: Duration,
) -> Result<(), SendError> {
    let failed =
        |error: std::io::Error| SendError::Failed(format!("sending the request body: {error}"));
    while *left > 0 {
        if cbuf.is_empty() {
            cbuf.reserve(LARGE_BUFFER);
            match tokio::time::timeout(timeout, io.read_buf(cbuf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Err(SendError::ClientGone),
            }
        }
        let take = cbuf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
        conn.write_all(&cbuf[..take]).await.map_err(failed)?;
        cbuf.advance(take);
        *left -= take as u64;
    }
    Ok(())
}

/// Writes `bytes` to the client within `timeout`.
pub(super) async fn write_out<S: AsyncWrite + Unpin>(
    io: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> bool {
    let write = io.write_all(bytes);
    tokio::pin!(write);
    let written = match now_or_pending(write.as_mut()).await {
        Some(written) => written,
        None => match tokio::time::timeout(timeout, write).await {
            Ok(written) => written,
            Err(_) => return false,
        },
    };
    written.is_ok()
}

/// Reads more of the upstream body into an emptied `buf`.
async fn read_more(conn: &mut TcpStream, buf: &mut BytesMut, timeout: Duration) -> Option<usize> {
    buf.clear();
    buf.reserve(LARGE_BUFFER);
    match tokio::time::timeout(timeout, conn.read_buf(buf)).await {
        Ok(Ok(n)) => Some(n),
        _ => None,
    }
}

/// A `Content-Length` body: exactly `length` bytes.
#[allow(clippy::too_many_arguments)]
async fn copy_length<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut out: Vec<u8>,
    mut length: u64,
    read_timeout: Duration,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let take = buf.len().min(usize::try_from(length).unwrap_or(usize::MAX));
    out.extend_from_slice(&buf[..take]);
    buf.advance(take);
    length -= take as u64;
    if !write_out(io, &out, write_timeout).await {
        return false;
    }
    answered.sent(take as u64);
    while length > 0 {
        match read_more(conn, buf, read_timeout).await {
            Some(n) if n > 0 => {}
            _ => return false,
        }
        let take = buf.len().min(usize::try_from(length).unwrap_or(usize::MAX));
        if !write_out(io, &buf[..take], write_timeout).await {
            return false;
        }
        buf.advance(take);
        length -= take as u64;
        answered.sent(take as u64);
    }
    true
}

/// A chunked body, relayed as it is up to its last chunk and trailers.
async fn copy_chunked<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut out: Vec<u8>,
    read_timeout: Duration,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let mut chunked = Chunked::default();
    let Ok((used, mut done)) = chunked.scan(buf) else {
        return false;
    };
    out.extend_from_slice(&buf[..used]);
    buf.advance(used);
    if !write_out(io, &out, write_timeout).await {
        return false;
    }
    answered.sent(used as u64);
    while !done {
        match read_more(conn, buf, read_timeout).await {
            Some(n) if n > 0 => {}
            _ => return false,
        }
        let Ok((used, end)) = chunked.scan(buf) else {
            return false;
        };
        done = end;
        if !write_out(io, &buf[..used], write_timeout).await {
            return false;
        }
        buf.advance(used);
        answered.sent(used as u64);
    }
    true
}

/// A body that ends when the server closes: sent to the client chunked.
async fn copy_until_close<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut out: Vec<u8>,
    read_timeout: Duration,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let mut frame = |out: &mut Vec<u8>, data: &[u8]| {
        if !data.is_empty() {
            head::chunk_header(out, data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
            answered.sent(data.len() as u64);
        }
    };
    frame(&mut out, buf);
    buf.clear();
    if !write_out(io, &out, write_timeout).await {
        return false;
    }
    loop {
        match read_more(conn, buf, read_timeout).await {
            Some(0) => break,
            Some(_) => {}
            None => return false,
        }
        out.clear();
        frame(&mut out, buf);
        buf.clear();
        if !write_out(io, &out, write_timeout).await {
            return false;
        }
    }
    write_out(io, b"0\r\n\r\n", write_timeout).await
}

/// A compressible answer of known, small length (`encode::ONE_SHOT`) for a
/// client that accepts compression: read whole, compressed in one call
/// with the encoding the compression layer would choose, and sent with its
/// length in one write. The headers change as the layer changes them.
#[allow(clippy::too_many_arguments)]
async fn copy_encoded<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    response: &ResponseHead,
    (length, encoding): (u64, encode::Encoding),
    extra: &Extra<'_>,
    (read_timeout, write_timeout): (Duration, Duration),
    answered: &mut request::Answered,
) -> bool {
    // `ONE_SHOT` bounds it, so this fits in memory.
    let Ok(body_len) = usize::try_from(length) else {
        return false;
    };
    let end = response.len + body_len;
    while buf.len() < end {
        buf.reserve(end - buf.len());
        match tokio::time::timeout(read_timeout, conn.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return false,
        }
    }
    let body = &buf[response.len..end];
    let compressed = match encoding {
        encode::Encoding::Identity => None,
        encoding => match encode::compress(encoding, body) {
            Ok(compressed) => Some(compressed),
            Err(error) => {
                tracing::warn!(error = %error, "compressing an upstream answer failed; sent as it is");
                None
            }
        },
    };
    let mut out = Vec::new();
    let parts = compressed
        .as_ref()
        .and_then(|_| head::response_parts(&buf[..response.len], extra));
    let sent = match (compressed, parts) {
        (Some(compressed), Some((mut parts, reason))) => {
            encode::mark(&mut parts.headers, encoding);
            out.reserve(compressed.len() + 512);
            head::write_compressed_head(&mut out, &parts, &reason, Some(compressed.len()), extra);
            out.extend_from_slice(&compressed);
            compressed.len()
        }
        _ => {
            // Sent as it is: the head as the fast path writes it (with
            // `Vary`), then the body.
            let plain = Extra {
                compress: false,
                ..*extra
            };
            if !matches!(
                head::parse_response(&buf[..response.len], MAX_RESPONSE_HEAD, &plain, &mut out),
                Ok(ResponseParse::Complete(_))
            ) {
                return false;
            }
            out.extend_from_slice(body);
            body.len()
        }
    };
    buf.advance(end);
    answered.sent(sent as u64);
    write_out(io, &out, write_timeout).await
}

/// An upstream body without its framing, read as the compression layer
/// asks for it. `done` is set once the body has been read to its end.
fn decoded_body<'a>(
    conn: &'a mut TcpStream,
    buf: &'a mut BytesMut,
    framing: Framing,
    read_timeout: Duration,
    done: &'a std::sync::atomic::AtomicBool,
) -> impl http_body::Body<Data = Bytes, Error = std::io::Error> + 'a {
    use std::sync::atomic::Ordering::Relaxed;
    enum Left {
        Bytes(u64),
        Chunked(Chunked),
        UntilClose,
    }
    let left = match framing {
        Framing::Length(n) => Left::Bytes(n),
        Framing::Chunked => Left::Chunked(Chunked::default()),
        Framing::Close => Left::UntilClose,
        Framing::Empty => Left::Bytes(0),
    };
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let frames =
        futures_util::stream::unfold((conn, buf, left), move |(conn, buf, mut left)| async move {
            loop {
                if done.load(Relaxed) {
                    return None;
                }
                let data = match &mut left {
                    Left::Bytes(0) => {
                        done.store(true, Relaxed);
                        continue;
                    }
                    Left::Bytes(n) => {
                        let take = buf.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                        *n -= take as u64;
                        buf.split_to(take).freeze()
                    }
                    Left::Chunked(chunked) => {
                        let mut data = BytesMut::new();
                        let input = &buf[..];
                        match chunked.decode(input, |range| data.extend_from_slice(&input[range])) {
                            Ok((used, end)) => {
                                buf.advance(used);
                                done.store(end, Relaxed);
                            }
                            Err(error) => {
                                let error = invalid(&error.to_string());
                                return Some((Err(error), (conn, buf, left)));
                            }
                        }
                        data.freeze()
                    }
                    Left::UntilClose => buf.split().freeze(),
                };
                if !data.is_empty() {
                    return Some((Ok(http_body::Frame::data(data)), (conn, buf, left)));
                }
                if done.load(Relaxed) {
                    return None;
                }
                match read_more(conn, buf, read_timeout).await {
                    Some(0) if matches!(left, Left::UntilClose) => done.store(true, Relaxed),
                    Some(0) => {
                        let error = invalid("the upstream closed the connection inside the body");
                        return Some((Err(error), (conn, buf, left)));
                    }
                    Some(_) => {}
                    None => {
                        let error = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "reading the upstream body failed or timed out",
                        );
                        return Some((Err(error), (conn, buf, left)));
                    }
                }
            }
        });
    // Fused: the compression layer may ask again after the end.
    http_body_util::StreamBody::new(futures_util::StreamExt::fuse(frames))
}

/// A compressible answer for a client that accepts compression: through
/// the sites' compression layer (`site::compress`), sent chunked. The
/// upstream body is read to its end, so its connection can be reused.
#[allow(clippy::too_many_arguments)]
async fn copy_compressed<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    response: &ResponseHead,
    accept_encoding: Vec<HeaderValue>,
    extra: &Extra<'_>,
    (read_timeout, write_timeout): (Duration, Duration),
    answered: &mut request::Answered,
) -> bool {
    use http_body_util::BodyExt;
    use std::sync::atomic::Ordering::Relaxed;
    /// Compressed output ready at once is gathered up to this size.
    const WRITE_AT: usize = 16 * 1024;

    let parts = head::response_parts(&buf[..response.len], extra);
    buf.advance(response.len);
    let Some((parts, reason)) = parts else {
        // A header the HeaderMap cannot hold (hyper would refuse it too).
        let mut out = Vec::new();
        head::write_status(
            &mut out,
            StatusCode::BAD_GATEWAY,
            &Extra {
                close: true,
                ..*extra
            },
            &[],
        );
        write_out(io, &out, write_timeout).await;
        return false;
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let body = decoded_body(conn, buf, response.framing, read_timeout, &done);
    let Some(compressed) =
        crate::site::compress(accept_encoding, http::Response::from_parts(parts, body)).await
    else {
        return false;
    };
    let (parts, body) = compressed.into_parts();
    let mut out = Vec::with_capacity(WRITE_AT + 512);
    head::write_compressed_head(&mut out, &parts, &reason, None, extra);
    let mut body = std::pin::pin!(body);
    loop {
        let frame = body.frame();
        tokio::pin!(frame);
        let frame = match now_or_pending(frame.as_mut()).await {
            Some(frame) => frame,
            None => {
                // Nothing more for now: what is compressed so far goes out
                // (an event stream must not wait for the next event).
                if !out.is_empty() {
                    if !write_out(io, &out, write_timeout).await {
                        return false;
                    }
                    out.clear();
                }
                frame.await
            }
        };
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref().filter(|data| !data.is_empty()) {
                    head::chunk_header(&mut out, data.len());
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                    answered.sent(data.len() as u64);
                }
            }
            Some(Err(error)) => {
                // The client sees a body cut short, as on the general path.
                tracing::warn!(error = %error, "compressing an upstream answer failed");
                write_out(io, &out, write_timeout).await;
                return false;
            }
            None => break,
        }
        if out.len() >= WRITE_AT {
            if !write_out(io, &out, write_timeout).await {
                return false;
            }
            out.clear();
        }
    }
    out.extend_from_slice(b"0\r\n\r\n");
    write_out(io, &out, write_timeout).await && done.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use head::Parsed;

    /// The header fields of an upstream head, names lowercased, sorted
    /// (order is free; values and their count are not).
    fn fields(out: &[u8]) -> (String, Vec<(String, String)>) {
        let text = std::str::from_utf8(out).expect("ascii head");
        let mut lines = text.split("\r\n");
        let start = lines.next().expect("request line").to_string();
        let mut fields: Vec<(String, String)> = lines
            .take_while(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(": ").expect("field");
                (name.to_ascii_lowercase(), value.to_string())
            })
            .collect();
        fields.sort();
        (start, fields)
    }

    fn parsed(text: &str) -> RequestHead {
        let mut buf = BytesMut::from(text.as_bytes());
        match head::parse_request(&mut buf, 64 * 1024) {
            Parsed::Head(head) => head,
            other => panic!("not relayable: {other:?}"),
        }
    }

    #[test]
    fn field_by_field_heads_match_the_header_map_rewrite() {
        let client = Client {
            peer: "203.0.113.9:4000".parse().expect("addr"),
            scheme: "https",
        };
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for text in [
            "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nX-Two: 1\r\nX-Two: 2\r\n\r\n",
            // Spoofed forwarded headers are replaced, whatever their case.
            "POST /f HTTP/1.1\r\nhost: example.com:8443\r\nX-Forwarded-For: 6.6.6.6\r\nX-FORWARDED-PROTO: http\r\nx-forwarded-host: evil\r\nX-Real-IP: 6.6.6.6\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            // Valid ids are kept, with the trace state.
            &format!("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-1\r\nX-Request-Id: second\r\ntraceparent: {parent}\r\ntracestate: v=1\r\ntracestate: w=2\r\nConnection: close\r\n\r\n"),
            // Invalid ones are replaced and the trace state dropped.
            "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: has space\r\ntraceparent: 00-bad\r\ntracestate: v=1\r\n\r\n",
            &format!("GET / HTTP/1.1\r\nHost: a\r\ntraceparent: {parent}\r\ntraceparent: {parent}\r\n\r\n"),
        ] {
            let head = parsed(text);
            assert!(head.plain, "{text:?}");
            let chosen = trace::choose(
                head.first(Kind::RequestId)
                    .and_then(|field| head.header_value(field))
                    .as_ref(),
                single_traceparent(&head).as_ref(),
            );
            let mut fast = Vec::new();
            head::write_forwarded(&mut fast, &head, client.peer.ip(), client.scheme, &chosen);
            let mut general = Vec::new();
            let (ids, client_ip) = rewrite(&mut general, &head, &client, |_| false);
            assert_eq!(client_ip, client.peer.ip());

            // New ids are random: compare with the ones each side chose.
            let (start, mut fast) = fields(&fast);
            let (general_start, mut general) = fields(&general);
            assert_eq!(start, general_start);
            for (fields, ids) in [(&mut fast, &chosen.ids), (&mut general, &ids)] {
                for (name, value) in fields.iter_mut() {
                    if (name == "x-request-id" && value == ids.request_id.to_str().expect("id"))
                        || (name == "traceparent"
                            && value == ids.traceparent.to_str().expect("parent"))
                    {
                        *value = "<chosen>".into();
                    }
                }
            }
            assert_eq!(fast, general, "{text:?}");
            assert_eq!(chosen.kept_request_id, text.contains("abc-1"));
            let get = |name: &str| {
                fast.iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
            };
            assert_eq!(get("x-forwarded-for"), ["203.0.113.9"]);
            assert_eq!(get("x-real-ip"), ["203.0.113.9"]);
            assert_eq!(get("x-forwarded-proto"), ["https"]);
            assert_eq!(get("x-forwarded-host").len(), 1);
            assert!(get("connection").is_empty());
        }
    }

    #[test]
    fn hop_by_hop_headers_take_the_header_map_rewrite() {
        for text in [
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic eA==\r\n\r\n",
        ] {
            assert!(!parsed(text).plain, "{text:?}");
        }
    }
}
