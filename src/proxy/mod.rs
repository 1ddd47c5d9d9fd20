//! Forwarding a request to an upstream server and its response back.
//!
//! In: a client request already routed to a pool, with `ClientInfo` in its
//! extensions. Out: the upstream's response with hop-by-hop headers removed,
//! or wharf's own 413/502/503/504. Bodies stream in both directions; nothing
//! is buffered whole. `Upgrade` requests (WebSocket) become a byte tunnel
//! after the upstream answers 101. Internal error text is logged, never sent
//! to the client.

pub mod client;
pub mod headers;
mod upgrade;

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::balance::Pool;
use crate::body::{self, Body};
use crate::response;

/// Facts about the client connection, put in each request's extensions by
/// the server.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub peer: SocketAddr,
    /// The real client: `peer`, or taken from `X-Forwarded-For` when the
    /// peer is a trusted proxy.
    pub client_ip: IpAddr,
    pub peer_trusted: bool,
    pub scheme: &'static str,
}

/// Which upstream server answered; put in response extensions for the
/// access log.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamUsed(pub SocketAddr);

/// Sends `req` to a server of `pool` and returns its response.
pub async fn forward(
    mut req: Request<Incoming>,
    pool: &Pool,
    max_body_size: u64,
) -> Response<Body> {
    if content_length(&req).is_some_and(|len| len > max_body_size) {
        return response::status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let Some(info) = req.extensions().get::<ClientInfo>().copied() else {
        tracing::error!("request reached the proxy without client info");
        return response::status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let upgrade = upgrade::requested(&req);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    let Some(backend) = pool.pick() else {
        tracing::warn!(upstream = %pool.name, "no upstream server available");
        return response::status(StatusCode::SERVICE_UNAVAILABLE);
    };

    let (mut parts, incoming) = req.into_parts();
    // HTTP/2 clients send :authority instead of Host.
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::set_forwarded(
        &mut parts.headers,
        headers::Forwarding {
            peer: info.peer.ip(),
            peer_trusted: info.peer_trusted,
            scheme: info.scheme,
            host: host.as_ref(),
        },
        info.client_ip,
    );
    if let Some(host) = host {
        parts.headers.insert(header::HOST, host);
    }
    if let Some(protocol) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol.clone());
    }
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = match Uri::try_from(format!("http://{}{}", backend.authority, path)) {
        Ok(uri) => uri,
        Err(_) => return response::status(StatusCode::BAD_REQUEST),
    };
    parts.version = Version::HTTP_11;
    let body = body::boxed(Limited::new(incoming, body_limit(max_body_size)));
    let request = Request::from_parts(parts, body);

    let sent = tokio::time::timeout(pool.response_timeout, pool.client.request(request)).await;
    let mut upstream_response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            if caused_by_body_limit(&error) {
                return response::status(StatusCode::PAYLOAD_TOO_LARGE);
            }
            tracing::warn!(
                upstream = %pool.name,
                server = %backend.addr,
                connect = error.is_connect(),
                error = %error_chain(&error),
                "upstream request failed"
            );
            let mut response = response::status(StatusCode::BAD_GATEWAY);
            response.extensions_mut().insert(UpstreamUsed(backend.addr));
            return response;
        }
        Err(_) => {
            tracing::warn!(
                upstream = %pool.name,
                server = %backend.addr,
                timeout = ?pool.response_timeout,
                "upstream did not answer in time"
            );
            let mut response = response::status(StatusCode::GATEWAY_TIMEOUT);
            response.extensions_mut().insert(UpstreamUsed(backend.addr));
            return response;
        }
    };

    let switching = upstream_response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let upgraded_protocol = upstream_response.headers().get(header::UPGRADE).cloned();
    headers::strip_hop_by_hop(upstream_response.headers_mut());
    match (switching, client_upgrade) {
        (true, Some(client_side)) => {
            let upstream_side = hyper::upgrade::on(&mut upstream_response);
            let headers = upstream_response.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Some(protocol) = upgraded_protocol {
                headers.insert(header::UPGRADE, protocol);
            }
            upgrade::tunnel(client_side, upstream_side, backend.addr);
        }
        (true, None) => {
            // A 101 the client never asked for cannot be relayed.
            tracing::warn!(upstream = %pool.name, server = %backend.addr, "unexpected 101 from upstream");
            return response::status(StatusCode::BAD_GATEWAY);
        }
        _ => {}
    }
    upstream_response
        .extensions_mut()
        .insert(UpstreamUsed(backend.addr));
    upstream_response.map(body::boxed)
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn body_limit(max_body_size: u64) -> usize {
    usize::try_from(max_body_size).unwrap_or(usize::MAX)
}

fn caused_by_body_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// "outer: inner: innermost", for logs.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Drains and discards a body (used for requests wharf answers itself).
pub async fn discard(body: Incoming) {
    let _ = body.collect().await;
}
