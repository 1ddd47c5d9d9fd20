//! The upstream's response head for the general path (`h1::client`):
//! split off the read buffer into `http` types whose header values share
//! the head's bytes.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};

use super::response::{Framing, Name, ResponseError};
use super::{parse_length, MAX_HEADERS};

/// An upstream response head for the general path (`h1::client`): the
/// status and the headers as `http` types, hop-by-hop headers left out.
#[derive(Debug)]
pub struct MappedHead {
    pub parts: http::response::Parts,
    pub framing: Framing,
    /// The upstream connection may carry another request afterwards.
    pub reusable: bool,
}

/// The outcome of [`map_response`].
#[derive(Debug)]
pub enum MapParse {
    Partial,
    /// A 1xx response (not 101) of this many bytes: skip it.
    Informational(usize),
    Complete(MappedHead),
}

/// Parses the upstream response head at the start of `buf` and, when it
/// is complete, splits it off `buf` into a `HeaderMap` whose values share
/// the head's bytes (no copy per value). Left out: `Connection`, the
/// headers it names, the other hop-by-hop headers, and `Content-Length`
/// beside a `Transfer-Encoding` (the body is handed on decoded).
/// `head_request`: the request was HEAD, so the body is empty whatever
/// the headers say.
pub fn map_response(
    buf: &mut BytesMut,
    max_head: usize,
    head_request: bool,
) -> Result<MapParse, ResponseError> {
    type Span = std::ops::Range<usize>;
    let mut spans: [(Name, Span, Span); MAX_HEADERS] =
        [const { (Name::Other, 0..0, 0..0) }; MAX_HEADERS];
    let mut count = 0;
    let (len, status, reason, http10, framing, upstream_close) = {
        let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut fields,
        ) {
            // A whole head read at once is held to the limit too.
            Ok(httparse::Status::Complete(len)) if len <= max_head => len,
            Ok(httparse::Status::Complete(_)) => return Err(ResponseError::TooLarge(max_head)),
            Ok(httparse::Status::Partial) if buf.len() <= max_head => return Ok(MapParse::Partial),
            Ok(httparse::Status::Partial) => return Err(ResponseError::TooLarge(max_head)),
            Err(error) => return Err(ResponseError::Parse(error)),
        };
        let status = response.code.unwrap_or(502);
        if status == 101 {
            return Err(ResponseError::Switching);
        }
        if (100..200).contains(&status) {
            return Ok(MapParse::Informational(len));
        }
        let base = buf.as_ptr() as usize;
        let span = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        };
        let mut listed: [&[u8]; 8] = [b""; 8];
        let mut listed_count = 0;
        let mut upstream_close = response.version != Some(1);
        let mut length: Option<u64> = None;
        let mut codings = 0;
        let mut other_coding = false;
        let mut transfer_encoded = false;
        for (field, slot) in response.headers.iter().zip(spans.iter_mut()) {
            let mut kind = Name::of(field.name.as_bytes());
            match kind {
                Name::Connection => {
                    for token in field.value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            upstream_close = true;
                        } else if !token.is_empty()
                            && !token.eq_ignore_ascii_case(b"keep-alive")
                            && listed_count < listed.len()
                        {
                            listed[listed_count] = token;
                            listed_count += 1;
                        }
                    }
                }
                Name::ContentLength => match (length, parse_length(field.value)) {
                    (None, Some(n)) => length = Some(n),
                    // The same length again: kept once.
                    (Some(old), Some(n)) if old == n => kind = Name::Repeated,
                    _ => return Err(ResponseError::Length),
                },
                Name::TransferEncoding => {
                    transfer_encoded = true;
                    super::count_codings(field.value, &mut codings, &mut other_coding);
                }
                _ => {}
            }
            *slot = (kind, span(field.name.as_bytes()), span(field.value));
            count += 1;
        }
        // A sign of response splitting (RFC 9112 6.3), refused as the
        // fast path refuses it.
        if transfer_encoded && length.is_some() {
            return Err(ResponseError::LengthAndEncoding);
        }
        if transfer_encoded && (other_coding || codings != 1) {
            return Err(ResponseError::Coding);
        }
        // Second pass over the kept spans: drop what is not relayed.
        let mut kept = 0;
        for index in 0..count {
            let (kind, name, _) = &spans[index];
            let relayed = match kind {
                Name::Connection | Name::HopByHop | Name::TransferEncoding | Name::Repeated => {
                    false
                }
                // RFC 9110 8.6: never on a 204; an HTTP/2 client takes a
                // 204 with a length for a broken stream.
                Name::ContentLength => !transfer_encoded && status != 204,
                _ => {
                    let name = &buf[name.clone()];
                    !listed[..listed_count]
                        .iter()
                        .any(|l| name.eq_ignore_ascii_case(l))
                }
            };
            if relayed {
                spans.swap(kept, index);
                kept += 1;
            }
        }
        count = kept;
        let framing = if head_request || status == 204 || status == 304 {
            Framing::Empty
        } else if transfer_encoded {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::Close
        };
        // httparse gives a static "" (not part of `buf`) for a missing
        // reason, or one with obs-text: only a reason with bytes has a span.
        let reason = response
            .reason
            .filter(|reason| !reason.is_empty())
            .map(|reason| span(reason.as_bytes()));
        (
            len,
            status,
            reason,
            response.version == Some(0),
            framing,
            upstream_close,
        )
    };

    let head = buf.split_to(len).freeze();
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(status)
        .map_err(|_| ResponseError::Parse(httparse::Error::Status))?;
    if http10 {
        parts.version = http::Version::HTTP_10;
    }
    if let Some(reason) = reason {
        let reason = &head[reason];
        if !reason.is_empty() && parts.status.canonical_reason().map(str::as_bytes) != Some(reason)
        {
            if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.to_vec()) {
                parts.extensions.insert(phrase);
            }
        }
    }
    parts.headers.reserve(count);
    for (_, name, value) in &spans[..count] {
        let name = HeaderName::from_bytes(&head[name.clone()])
            .map_err(|_| ResponseError::Parse(httparse::Error::HeaderName))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value.clone()))
            .map_err(|_| ResponseError::Parse(httparse::Error::HeaderValue))?;
        parts.headers.append(name, value);
    }
    Ok(MapParse::Complete(MappedHead {
        parts,
        framing,
        reusable: !upstream_close && framing != Framing::Close,
    }))
}
