//! Forwarding a request to an upstream server and its response back.
//!
//! In: a client request already routed to a pool, with `ClientInfo` in its
//! extensions. Out: the upstream's response with hop-by-hop headers removed,
//! or wharf's own 413/502/503/504. Bodies stream in both directions; nothing
//! is buffered whole. `Upgrade` requests (WebSocket) become a byte tunnel
//! after the upstream answers 101. Internal error text is logged, never sent
//! to the client.
//!
//! `forward` is here; the bodies it passes on, each watched for a pause
//! (the client's request body, the upstream's response body), are in
//! `bodies.rs`, and reading a failure's chain of causes in `errors.rs`.

mod bodies;
pub mod client;
mod errors;
pub mod headers;
pub mod pool;
pub mod strip;
mod upgrade;

use std::net::{IpAddr, SocketAddr};

use futures_util::future::Either;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::balance::{Pick, Pool, Tried};
use crate::body::{self, Body};
use crate::h1::client as h1_client;
use crate::observe::trace;
use crate::response;
pub use bodies::BodyStalled;
use bodies::{
    content_length, ClientBody, ClientBodyTimedOut, Payload, RequestBodyFailed, Stall, Tracked,
};
use errors::{caused_by, error_chain, unavailable};

/// Facts about the client connection, put in each request's extensions by
/// the server.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub peer: SocketAddr,
    /// The real client: `peer`, or taken from `X-Forwarded-For` when the
    /// peer is a trusted proxy.
    pub client_ip: IpAddr,
    pub peer_trusted: bool,
    pub scheme: &'static str,
    /// `peer`'s IP as a header value, rendered once per connection.
    pub peer_header: HeaderValue,
    /// The request's ids (`observe::trace`), put on the request that goes
    /// upstream by `forward`.
    pub trace: trace::Chosen,
    /// How long the request body may pause (`server.idle_timeout`, as
    /// nginx's `client_body_timeout`): then the answer is 408.
    pub body_timeout: std::time::Duration,
}

/// Which upstream server answered; put in response extensions for the
/// access log.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamUsed(pub SocketAddr);

/// Request bodies up to this size are buffered so the request can be
/// retried on another server; larger ones stream and are never replayed.
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// Held request bodies up to this size go upstream with their head in one
/// write by `h1::client`. Head and body then fit in a socket's send
/// buffer at once, so the write never waits for a server that answers
/// before reading the body; larger ones go through hyper's client, which
/// reads the answer while it writes.
pub const BARE_BODY: usize = 8 * 1024;
/// How one attempt ended. Lives on the stack of one request for a moment;
/// boxing the response would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Attempt {
    Answered(Response<pool::Upstream>, pool::Lease),
    /// The connection could not be made: nothing was sent.
    ConnectFailed(pool::SendError),
    Failed(pool::SendError),
    TimedOut,
}

/// Sends `req` to a server of `pool` and returns its response, retrying on
/// another server when that is safe. `strip_prefix`: the route's path, to
/// take off the request's (see `strip`).
pub async fn forward(
    mut req: Request<Incoming>,
    pool: &Pool,
    max_body_size: u64,
    strip_prefix: Option<&str>,
) -> Response<Body> {
    let declared_length = content_length(&req);
    if declared_length.is_some_and(|len| len > max_body_size) {
        return response::status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let Some(info) = req.extensions_mut().remove::<ClientInfo>() else {
        tracing::error!("request reached the proxy without client info");
        return response::status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let upgrade = upgrade::requested(&req);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    let (mut parts, incoming) = req.into_parts();
    // HTTP/2 clients send :authority instead of Host.
    let host = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .or_else(|| parts.headers.get(header::HOST).cloned());
    headers::strip_hop_by_hop(&mut parts.headers);
    let forwarded = headers::Forwarded::new(
        &parts.headers,
        headers::Forwarding {
            peer: info.peer.ip(),
            peer_trusted: info.peer_trusted,
            scheme: info.scheme,
            host: host.as_ref(),
            peer_header: &info.peer_header,
        },
        info.client_ip,
    );
    let mut path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    if let Some(prefix) = strip_prefix {
        strip::set_prefix(&mut parts.headers, info.peer_trusted, prefix);
        // What is left of a valid target is one.
        match http::uri::PathAndQuery::try_from(strip::target(prefix, path.as_str())) {
            Ok(stripped) => path = stripped,
            Err(_) => return response::status(StatusCode::BAD_REQUEST),
        }
    }
    let method = parts.method.clone();
    let idempotent = matches!(
        method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    let retries = pool.settings.retries;

    // Hold small bodies so a retry can resend them; stream the rest.
    let mut payload = if incoming.is_end_stream() {
        Payload::Held(bytes::Bytes::new())
    } else if retries > 0
        && upgrade.is_none()
        && declared_length.is_some_and(|len| len <= REPLAYABLE_BODY)
    {
        match Limited::new(
            ClientBody::new(incoming, info.body_timeout),
            REPLAYABLE_BODY as usize,
        )
        .collect()
        .await
        {
            Ok(collected) => Payload::Held(collected.to_bytes()),
            Err(error) if caused_by::<ClientBodyTimedOut>(&*error) => {
                return response::status(StatusCode::REQUEST_TIMEOUT)
            }
            Err(_) => return response::status(StatusCode::BAD_REQUEST),
        }
    } else {
        Payload::Streaming(Some(ClientBody::new(incoming, info.body_timeout)))
    };

    // A request without a body (nearly every GET), or with a small one
    // held whole, goes to the upstream by `h1::client` on a bare socket,
    // its head written from the incoming fields and the replaced ones side
    // by side; the others through hyper's client, with the replaced fields
    // put into the header map.
    let bare_body = match &payload {
        Payload::Held(body) if body.len() <= BARE_BODY => Some(body.clone()),
        _ => None,
    };
    let bare = upgrade.is_none() && method != Method::CONNECT && bare_body.is_some();
    // At most the four forwarded fields and the two ids.
    let mut extra = [(&trace::X_REQUEST_ID, &info.trace.ids.request_id); 6];
    let mut extra_count = 0;
    if bare {
        let ids = [
            (!info.trace.kept_request_id)
                .then_some((&trace::X_REQUEST_ID, &info.trace.ids.request_id)),
            (!info.trace.kept_traceparent)
                .then_some((&trace::TRACEPARENT, &info.trace.ids.traceparent)),
        ];
        for (slot, field) in extra
            .iter_mut()
            .zip(forwarded.fields().chain(ids.into_iter().flatten()))
        {
            *slot = field;
            extra_count += 1;
        }
    } else {
        forwarded.apply(&mut parts.headers);
        trace::apply(&info.trace, &mut parts.headers);
        if let Some(host) = host.clone() {
            parts.headers.insert(header::HOST, host);
        }
        if let Some(protocol) = &upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, protocol.clone());
        }
    }
    let skip = |name: &HeaderName| forwarded.replaces(name) || info.trace.replaces(name);

    pool.budget.deposit();
    let mut tried = Tried::default();
    let mut attempt = 0u32;
    loop {
        let index = match pool.pick(info.client_ip, &tried) {
            Pick::Server(index) => index,
            Pick::Unavailable { retry_after } => return unavailable(retry_after),
        };
        tried.insert(index);
        let member = &pool.members[index];
        let in_flight = member.state.start_request();

        let sent = std::time::Instant::now();
        let send = if bare {
            // Written from `parts` as they are: nothing to clone or build.
            Either::Left(pool::send_bare(
                &member.state,
                h1_client::Head {
                    method: &method,
                    target: path.as_str().as_bytes(),
                    host: match &host {
                        Some(host) => host.as_bytes(),
                        None => member.authority.as_str().as_bytes(),
                    },
                    headers: &parts.headers,
                    skip: &skip,
                    extra: &extra[..extra_count],
                    body: bare_body.as_deref().unwrap_or_default(),
                },
                pool.settings.connect_timeout,
            ))
        } else {
            // Origin-form target: the connection already names the server.
            let uri = Uri::from(path.clone());
            let may_retry_later = payload.replayable() && attempt < retries;
            let mut request = Request::new(payload.take(max_body_size));
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri;
            *request.version_mut() = Version::HTTP_11;
            *request.headers_mut() = if may_retry_later {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            if !request.headers().contains_key(header::HOST) {
                if let Ok(value) = HeaderValue::from_str(member.authority.as_str()) {
                    request.headers_mut().insert(header::HOST, value);
                }
            }
            Either::Right(pool::send(
                &member.state,
                request,
                pool.settings.connect_timeout,
            ))
        };
        let outcome = match tokio::time::timeout(pool.settings.response_timeout, send).await {
            Ok(Ok((response, lease))) => Attempt::Answered(response, lease),
            Ok(Err(error)) if error.is_connect() => Attempt::ConnectFailed(error),
            Ok(Err(error)) => Attempt::Failed(error),
            Err(_) => Attempt::TimedOut,
        };

        // A failure is retried only when resending is safe: nothing was
        // sent (connect failed), or the method is idempotent; and the body
        // is held, not streamed.
        let (success, safe_to_retry) = match &outcome {
            Attempt::Answered(response, _) => {
                let status = response.status().as_u16();
                (status < 500, idempotent && matches!(status, 502..=504))
            }
            Attempt::ConnectFailed(_) => (false, true),
            // The client's body failing is no failure of the server.
            Attempt::Failed(error) => (caused_by::<RequestBodyFailed>(error), idempotent),
            Attempt::TimedOut => (false, idempotent),
        };
        pool.record(index, success);
        if let Attempt::Answered(..) = &outcome {
            pool.metrics.answered(index, sent.elapsed());
        }
        let wanted = !success && safe_to_retry && payload.replayable();
        if let Some(delay) = pool.retry(index, &mut attempt, wanted) {
            drop(outcome);
            drop(in_flight);
            tokio::time::sleep(delay).await;
            continue;
        }

        let (mut upstream_response, lease) = match outcome {
            Attempt::Answered(response, lease) => (response, lease),
            Attempt::ConnectFailed(error) | Attempt::Failed(error) => {
                if caused_by::<LengthLimitError>(&error) {
                    return response::status(StatusCode::PAYLOAD_TOO_LARGE);
                }
                if caused_by::<ClientBodyTimedOut>(&error) {
                    tracing::debug!(
                        upstream = %pool.name,
                        "the client's request body stopped coming; answering 408"
                    );
                    return response::status(StatusCode::REQUEST_TIMEOUT);
                }
                if caused_by::<RequestBodyFailed>(&error) {
                    tracing::debug!(
                        upstream = %pool.name,
                        error = %error_chain(&error),
                        "the client's request body failed while it was sent upstream"
                    );
                    return response::status(StatusCode::BAD_REQUEST);
                }
                tracing::warn!(
                    upstream = %pool.name,
                    server = %member.addr,
                    connect = error.is_connect(),
                    error = %error_chain(&error),
                    "upstream request failed"
                );
                return with_upstream(response::status(StatusCode::BAD_GATEWAY), member.addr);
            }
            Attempt::TimedOut => {
                tracing::warn!(
                    upstream = %pool.name,
                    server = %member.addr,
                    timeout = ?pool.settings.response_timeout,
                    "upstream did not answer in time"
                );
                return with_upstream(response::status(StatusCode::GATEWAY_TIMEOUT), member.addr);
            }
        };

        let switching = upstream_response.status() == StatusCode::SWITCHING_PROTOCOLS;
        let upgraded_protocol = upstream_response.headers().get(header::UPGRADE).cloned();
        headers::strip_hop_by_hop(upstream_response.headers_mut());
        if upstream_response.status() == StatusCode::NO_CONTENT {
            // RFC 9110 8.6: a 204 has no length; an HTTP/2 client takes
            // one for a broken stream. (The bare path left it out already.)
            upstream_response
                .headers_mut()
                .remove(header::CONTENT_LENGTH);
        }
        match (switching, client_upgrade) {
            (true, Some(client_side)) => {
                let upstream_side = hyper::upgrade::on(&mut upstream_response);
                let headers = upstream_response.headers_mut();
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                if let Some(protocol) = upgraded_protocol {
                    headers.insert(header::UPGRADE, protocol);
                }
                upgrade::tunnel(client_side, upstream_side, member.addr, in_flight);
                return with_upstream(upstream_response.map(body::boxed), member.addr);
            }
            (true, None) => {
                // A 101 the client never asked for cannot be relayed.
                tracing::warn!(upstream = %pool.name, server = %member.addr, "unexpected 101 from upstream");
                return response::status(StatusCode::BAD_GATEWAY);
            }
            _ => {}
        }
        // The server counts as busy until its response body is done; then
        // the connection goes back to the pool.
        let response = upstream_response.map(|incoming| {
            let mut lease = Some(lease);
            if incoming.is_end_stream() {
                if let Some(lease) = lease.take() {
                    lease.release();
                }
            }
            body::boxed(Tracked {
                inner: incoming,
                lease,
                _in_flight: in_flight,
                stall: Stall::new(pool.settings.response_timeout),
                server: member.addr,
            })
        });
        return with_upstream(response, member.addr);
    }
}

fn with_upstream(mut response: Response<Body>, addr: SocketAddr) -> Response<Body> {
    response.extensions_mut().insert(UpstreamUsed(addr));
    response
}
