//! The head of an answer the fast path compresses: the upstream's status
//! and relayed headers as `http` types for the compression layer, and the
//! client's head written from what the layer made of them.

use http::header::HeaderValue;

use super::response::{relayed, status_digits, Extra, Name};
use super::write::write_extra;
use super::MAX_HEADERS;

/// The status, reason and relayed headers of a complete upstream response
/// head at the start of `buf`, for an answer to compress (`ResponseHead::
/// compress`): the compression layer works on a `HeaderMap`.
pub fn response_parts(buf: &[u8], extra: &Extra<'_>) -> Option<(http::response::Parts, String)> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    if !matches!(response.parse(buf), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut listed: Vec<&[u8]> = Vec::new();
    let mut transfer_encoded = false;
    for field in response.headers.iter() {
        let name = field.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            listed.extend(
                field
                    .value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|token| !token.is_empty()),
            );
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoded = true;
        }
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(response.code?).ok()?;
    for field in response.headers.iter() {
        let name = field.name.as_bytes();
        if !relayed(Name::of(name), name, &listed, transfer_encoded, extra) {
            continue;
        }
        let name = http::HeaderName::from_bytes(name).ok()?;
        let value = HeaderValue::from_bytes(field.value).ok()?;
        parts.headers.append(name, value);
    }
    if let Some(route) = extra.route {
        route.apply(parts.status.as_u16(), &mut parts.headers);
    }
    Some((parts, response.reason.unwrap_or("").to_string()))
}

/// Writes the client's head for a compressed (or, should the compression
/// layer decline, plain) answer: with the length when it is known
/// (`encode.rs`), else chunked.
pub fn write_compressed_head(
    out: &mut Vec<u8>,
    parts: &http::response::Parts,
    reason: &str,
    length: Option<usize>,
    extra: &Extra<'_>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&status_digits(parts.status.as_u16()));
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == http::header::CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Some(length) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(length.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if !parts.headers.contains_key(http::header::DATE) {
        super::write_date(out);
    }
    write_extra(out, extra);
}
