//! The request head sent upstream: written field by field for a plain
//! head from an untrusted peer, or from a `HeaderMap` otherwise.

use http::header::HeaderMap;
use http::Method;

use super::request::{Kind, RequestHead};
use crate::observe::trace::Chosen;

/// Writes the head sent upstream: origin-form, HTTP/1.1.
pub fn write_request(out: &mut Vec<u8>, method: &Method, target: &[u8], headers: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the head sent upstream for a `plain` head from a peer that is
/// not a trusted proxy, field by field as it came, with the same result
/// as `proxy::headers` and `trace::take_or_create` on a `HeaderMap`:
/// `Connection` and the forwarded headers the client sent are dropped (a
/// client cannot spoof its address), ids wharf replaced are dropped, and
/// `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and new ids are added.
pub fn write_forwarded(
    out: &mut Vec<u8>,
    head: &RequestHead,
    peer: std::net::IpAddr,
    scheme: &str,
    chosen: &Chosen,
) {
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for field in &head.fields {
        let dropped = match field.kind {
            Kind::Connection
            | Kind::HopByHop
            | Kind::ForwardedFor
            | Kind::Forwarded
            | Kind::ForwardedProto
            | Kind::ForwardedHost
            | Kind::RealIp => true,
            Kind::RequestId => !chosen.kept_request_id,
            Kind::Traceparent | Kind::Tracestate => !chosen.kept_traceparent,
            Kind::Host | Kind::UserAgent | Kind::Referer | Kind::Other => false,
        };
        if !dropped {
            write_field(out, head.name(field), head.value(field));
        }
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    let start = out.len();
    write_ip(out, peer);
    let end = out.len();
    out.extend_from_slice(b"\r\nx-real-ip: ");
    out.extend_from_within(start..end);
    out.extend_from_slice(b"\r\n");
    write_field(out, b"x-forwarded-proto", scheme.as_bytes());
    write_field(out, b"x-forwarded-host", head.host().as_bytes());
    if !chosen.kept_request_id {
        write_field(out, b"x-request-id", chosen.ids.request_id.as_bytes());
    }
    if !chosen.kept_traceparent {
        write_field(out, b"traceparent", chosen.ids.traceparent.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// An address as `Display` writes it; IPv4 without the formatting
/// machinery, which costs more than the rest of the head.
pub(super) fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        std::net::IpAddr::V6(_) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{ip}");
        }
    }
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
