//! What a relayed request starts with: its record opened as the general
//! path opens it (metrics, access log), its single `traceparent`, and the
//! upstream head written through a `HeaderMap` when it cannot be written
//! field by field.

use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};

use super::Context;
use crate::h1::head::{self, Kind, RequestHead};
use crate::h1::Client;
use crate::observe::access::Entry;
use crate::observe::request::{RouteSlot, Started};
use crate::observe::{metrics, trace};
use crate::proxy::{headers, strip};

/// Opens the request's record, as the general path's `conn::handle`
/// does: counted in flight since `start`, under the route of `metrics`,
/// and logged when access logging is on.
pub(in crate::h1) fn started(
    head: &RequestHead,
    cx: &Context,
    (start, in_flight): (Instant, metrics::RequestGuard),
    ids: trace::Ids,
    client_ip: std::net::IpAddr,
    metrics: &metrics::RouteMetrics,
) -> Started {
    let snapshot = &*cx.snapshot;
    let route = RouteSlot::known(metrics);
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
pub(in crate::h1) fn single_traceparent(head: &RequestHead) -> Option<HeaderValue> {
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
/// for a trusted proxy's requests (its forwarded headers are extended),
/// for heads with hop-by-hop headers to remove, and for `strip_prefix`
/// routes (the target and `X-Forwarded-Prefix` change). Returns the ids
/// and the client's address.
pub(super) fn rewrite(
    out: &mut Vec<u8>,
    head: &RequestHead,
    client: &Client,
    is_trusted: impl Fn(std::net::IpAddr) -> bool,
    strip_prefix: Option<&str>,
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
    match strip_prefix {
        Some(prefix) => {
            strip::set_prefix(&mut headers, peer_trusted, prefix);
            let target = strip::target(prefix, head.target.as_str());
            head::write_request(out, &head.method, target.as_bytes(), &headers);
        }
        None => head::write_request(out, &head.method, head.target.as_str().as_bytes(), &headers),
    }
    (ids, client_ip)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

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
            let (ids, client_ip) = rewrite(&mut general, &head, &client, |_| false, None);
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
