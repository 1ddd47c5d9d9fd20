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
//!
//! By concept: sending one attempt upstream and reading its response head,
//! within the response deadline (`send.rs`); the request's record and the
//! upstream head written through a `HeaderMap` (`prepare.rs`); a body
//! copied as it is (`copy.rs`) or compressed (`compress.rs`).

mod compress;
mod context;
mod copy;
mod prepare;
mod send;

use std::pin::Pin;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use http::{Method, StatusCode};
use tokio::time::Sleep;

use super::head::{self, Extra, Framing, Kind, RequestHead};
use super::spare::{self, Spare};
use super::Target;
use crate::balance::{Pick, Tried};
use crate::encode;
use crate::observe::request;
use crate::observe::{metrics, trace};
use crate::server::conn::Transport;
use compress::{copy_compressed, copy_encoded};
pub(crate) use context::Context;
use copy::{copy_chunked, copy_length, copy_until_close};
pub(super) use copy::{flush, write_out};
use prepare::rewrite;
pub(super) use prepare::{single_traceparent, started};
use send::{client_gone, fail, read_body, send, within, Answer, BodyStop, Payload, SendError};

/// Request bodies up to this size are read whole so the request can be
/// retried on another server (the same limit as `proxy::forward`).
const REPLAYABLE_BODY: u64 = 64 * 1024;
/// Read buffer once a body turns out to be large.
const LARGE_BUFFER: usize = 64 * 1024;
/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

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
    let (ids, client_ip) = if head.plain && !peer_trusted && target.strip.is_none() {
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
        let strip = target.strip.as_deref();
        rewrite(
            &mut upstream_head,
            &head,
            &cx.client,
            |ip| snapshot.is_trusted(ip),
            strip,
        )
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
                        route: None,
                        pages: cx.error_pages(),
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
        route: target.headers.as_deref(),
        pages: cx.error_pages(),
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
                    &extra,
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
