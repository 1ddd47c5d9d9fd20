//! Static files kept in memory (`files::cache`), answered on the fast
//! path: a plain `GET` for a kept file is written from memory with the
//! headers the full stack gives it (plus `date` and `x-request-id` as
//! there, and HSTS over HTTPS), counted and logged like any request.
//! Everything else a static route gets (ranges, conditions other than
//! `If-None-Match`, `HEAD`, files not kept or changed since) goes to hyper
//! with the connection, as before.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::exchange::{self, Context};
use super::head::{self, Extra, Kind, RequestHead};
use super::Next;
use crate::files::{cache, StaticFiles};
use crate::observe::metrics::{self, RouteMetrics};
use crate::observe::{request, trace};
use crate::proxy::headers;
use crate::server::conn::Transport;

/// A body up to this size is written in the same call as the head.
const WITH_HEAD: usize = 16 * 1024;

/// A plain `GET` a static route may answer from memory.
pub(crate) struct Kept {
    pub files: Arc<StaticFiles>,
    pub key: cache::Key,
    pub metrics: RouteMetrics,
}

/// Answers `head` from the kept file, or hands the connection to hyper
/// (with the head put back) when the file is not kept or has changed.
pub(crate) async fn answer<S: Transport>(
    io: &mut S,
    buf: &mut BytesMut,
    head: RequestHead,
    kept: Kept,
    cx: Context,
) -> Next {
    let start = Instant::now();
    let Some(entry) = kept.files.kept(&kept.key).await else {
        let mut whole = BytesMut::from(&head.raw[..]);
        whole.extend_from_slice(buf);
        buf.clear();
        return Next::Handoff(whole);
    };
    let in_flight = metrics::global().request_started();
    let (ids, client_ip) = identify(&head, &cx);
    let request_id = ids.request_id.clone();
    let started = exchange::started(
        &head,
        &cx,
        (start, in_flight),
        ids,
        client_ip,
        &kept.metrics,
    );

    let if_none_match = head
        .fields
        .iter()
        .find(|field| head.name(field).eq_ignore_ascii_case(b"if-none-match"))
        .and_then(|field| head.header_value(field));
    let mut out = Vec::with_capacity(512 + entry_len(&entry));
    let (status, body) = entry.write_h1(&mut out, if_none_match.as_ref(), kept.files.headers());
    head::write_date(&mut out);
    let close = head.close || cx.closing;
    head::write_extra(
        &mut out,
        &Extra {
            request_id: &request_id,
            hsts: cx.hsts.as_ref(),
            close,
            head_request: false,
            compress: false,
            // The kept answer carries the route's headers already.
            route: None,
            pages: None,
        },
    );
    let mut answered = request::answered(started, status, None);
    let together = body.len() <= WITH_HEAD;
    if together {
        out.extend_from_slice(&body);
    }
    let mut written = exchange::write_out(io, &out, cx.idle_timeout).await;
    if written && !together {
        written = exchange::write_out(io, &body, cx.idle_timeout).await;
    }
    if written {
        answered.sent(body.len() as u64);
    }
    drop(answered);
    let flushed = written && exchange::flush(io, cx.idle_timeout).await;
    if flushed && !close {
        Next::Request
    } else {
        Next::Close
    }
}

fn entry_len(entry: &cache::Entry) -> usize {
    entry.body_len().min(WITH_HEAD)
}

/// The request's ids and the client's address, as the general path finds
/// them (a trusted proxy's forwarded headers name the client).
fn identify(head: &RequestHead, cx: &Context) -> (trace::Ids, std::net::IpAddr) {
    let peer = cx.client.peer.ip();
    let snapshot = &*cx.snapshot;
    if head.plain && !snapshot.is_trusted(peer) {
        let chosen = trace::choose(
            head.first(Kind::RequestId)
                .and_then(|field| head.header_value(field))
                .as_ref(),
            exchange::single_traceparent(head).as_ref(),
        );
        return (chosen.ids, peer);
    }
    let mut fields = head.header_map();
    let ids = trace::take_or_create(&mut fields);
    let client_ip = headers::client_ip(&fields, peer, |ip| snapshot.is_trusted(ip));
    (ids, client_ip)
}
