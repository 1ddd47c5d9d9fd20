//! The upstream's response head on the fast path: parsed, its framing
//! worked out, and rewritten for the client in one pass (hop-by-hop
//! headers dropped, `X-Request-Id`, HSTS, `Date` and `Vary` added).

use std::mem::MaybeUninit;

use http::header::HeaderValue;

use super::write::write_extra;
use super::{all_bytes, parse_length, token_is, MAX_HEADERS};
use crate::route::headers::RouteHeaders;
use crate::site::error_pages::ErrorPages;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// An upstream response head, already rewritten for the client.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    /// The upstream connection may carry another request afterwards.
    pub reusable: bool,
    /// Bytes of the head in the upstream buffer.
    pub len: usize,
    /// The answer is to be compressed for this client: nothing was written
    /// to the client's head, `compressed_head` builds it.
    pub compress: bool,
}

/// Why an upstream response head is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed response head: {0}")]
    Parse(httparse::Error),
    #[error("response head larger than {0} bytes")]
    TooLarge(usize),
    #[error("conflicting Content-Length headers")]
    Length,
    /// RFC 9112 6.3: a sign of response splitting, "ought to be handled as
    /// an error" (nginx answers 502 too).
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndEncoding,
    #[error("unexpected 101 Switching Protocols")]
    Switching,
    /// A `Transfer-Encoding` other than `chunked` alone (`count_codings`).
    #[error("a transfer coding other than chunked alone")]
    Coding,
}

/// What the client side adds to every response head.
pub struct Extra<'a> {
    pub request_id: &'a HeaderValue,
    pub hsts: Option<&'a HeaderValue>,
    /// Tell the client the connection closes after this response.
    pub close: bool,
    /// The request was HEAD: the body is empty whatever the headers say.
    pub head_request: bool,
    /// The client accepts compression (`RequestHead::compress`).
    pub compress: bool,
    /// The route's `[site.route.headers]`, set on an upstream's answer
    /// when its status takes them (not on wharf's own answers).
    pub route: Option<&'a RouteHeaders>,
    /// The site's `error_pages`, for wharf's own error answers
    /// (`write_status`).
    pub pages: Option<&'a ErrorPages>,
}

/// The outcome of parsing the start of the upstream buffer.
pub enum ResponseParse {
    Partial,
    /// A 1xx response (not 101) of this many bytes: skip it.
    Informational(usize),
    Complete(ResponseHead),
}

/// Parses the upstream response head at the start of `buf` and, when it
/// is complete, writes the client's head to `out`: hop-by-hop headers
/// removed, `X-Request-Id` (and HSTS) set, and framing for the client.
pub fn parse_response(
    buf: &[u8],
    max_head: usize,
    extra: &Extra<'_>,
    out: &mut Vec<u8>,
) -> Result<ResponseParse, ResponseError> {
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
        Ok(httparse::Status::Partial) if buf.len() <= max_head => {
            return Ok(ResponseParse::Partial)
        }
        Ok(httparse::Status::Partial) => return Err(ResponseError::TooLarge(max_head)),
        Err(error) => return Err(ResponseError::Parse(error)),
    };
    let status = response.code.unwrap_or(502);
    // httparse takes any three digits; a status under 100 is no answer a
    // client can read. Refused as the general path refuses it (`http::
    // StatusCode`), rather than relayed.
    if http::StatusCode::from_u16(status).is_err() {
        return Err(ResponseError::Parse(httparse::Error::Status));
    }
    if status == 101 {
        return Err(ResponseError::Switching);
    }
    if (100..200).contains(&status) {
        return Ok(ResponseParse::Informational(len));
    }

    // Headers the Connection header names are hop-by-hop too.
    let mut listed: [&[u8]; 8] = [b""; 8];
    let mut listed_count = 0;
    let mut upstream_close = response.version != Some(1);
    let mut length: Option<u64> = None;
    let mut codings = 0;
    let mut other_coding = false;
    let mut transfer_encoded = false;
    let mut dated = false;
    // What the general path's compression layer looks at (`vary_on_encoding`).
    let mut encoded = false;
    let mut varies = false;
    let mut content_type: &[u8] = b"";
    // Each name is looked up once; the second pass below reads these.
    let mut names = [Name::Other; MAX_HEADERS];
    for (field, kind) in response.headers.iter().zip(names.iter_mut()) {
        *kind = Name::of(field.name.as_bytes());
        match *kind {
            Name::Date => dated = true,
            Name::ContentType => content_type = field.value,
            Name::ContentEncoding | Name::ContentRange => encoded = true,
            Name::Vary => varies |= contains_ignore_case(field.value, b"accept-encoding"),
            Name::Connection => {
                for token in field.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        upstream_close = true;
                    } else if !token.is_empty()
                        && !token.eq_ignore_ascii_case(b"keep-alive")
                        && listed_count < listed.len()
                    {
                        // `keep-alive` is hop-by-hop anyway.
                        listed[listed_count] = token;
                        listed_count += 1;
                    }
                }
            }
            Name::ContentLength => match (length, parse_length(field.value)) {
                (None, Some(n)) => length = Some(n),
                // RFC 9110 8.6: the same length again is that length,
                // relayed once.
                (Some(old), Some(n)) if old == n => *kind = Name::Repeated,
                _ => return Err(ResponseError::Length),
            },
            Name::TransferEncoding => {
                transfer_encoded = true;
                super::count_codings(field.value, &mut codings, &mut other_coding);
            }
            Name::HopByHop | Name::RequestId | Name::Hsts | Name::Repeated | Name::Other => {}
        }
    }
    if transfer_encoded && length.is_some() {
        return Err(ResponseError::LengthAndEncoding);
    }
    if transfer_encoded && (other_coding || codings != 1) {
        return Err(ResponseError::Coding);
    }
    let framing = if extra.head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if transfer_encoded {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };

    let compressible = !encoded && vary_on_encoding(status, length, transfer_encoded, content_type);
    if compressible && extra.compress && framing != Framing::Empty {
        return Ok(ResponseParse::Complete(ResponseHead {
            status,
            framing,
            reusable: !upstream_close && framing != Framing::Close,
            len,
            compress: true,
        }));
    }

    let route = extra.route.filter(|_| RouteHeaders::apply_to(status));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&status_digits(status));
    out.extend_from_slice(b" ");
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (field, &kind) in response.headers.iter().zip(names.iter()) {
        let name = field.name.as_bytes();
        if !relayed(kind, name, &listed[..listed_count], transfer_encoded, extra)
            || route.is_some_and(|route| route.replaces(name))
        {
            continue;
        }
        if status == 204 && kind == Name::ContentLength {
            // RFC 9110 8.6: a 204 has no length (nginx drops it too).
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value);
        out.extend_from_slice(b"\r\n");
    }
    if matches!(framing, Framing::Chunked | Framing::Close) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if compressible && !varies {
        // Sent as it is (this client did not ask for compression, or the
        // answer has no body), but the same answer to a client that asks
        // is compressed: caches must keep them apart.
        out.extend_from_slice(b"vary: accept-encoding\r\n");
    }
    if !dated {
        // RFC 9110 6.6.1: a proxy forwarding a response without a Date
        // adds the time it received it.
        super::write_date(out);
    }
    if let Some(route) = route {
        route.write(out);
    }
    write_extra(out, extra);

    Ok(ResponseParse::Complete(ResponseHead {
        status,
        framing,
        reusable: !upstream_close && framing != Framing::Close,
        len,
        compress: false,
    }))
}

/// The three digits of a status code (httparse accepts exactly three).
pub(super) fn status_digits(status: u16) -> [u8; 3] {
    [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]
}

/// Whether an upstream response header goes on to the client: not
/// hop-by-hop (nor named by `Connection`), not one wharf sets itself, and
/// no `Content-Length` beside a `Transfer-Encoding`.
/// `kind` is `Name::of(name)`.
pub(super) fn relayed(
    kind: Name,
    name: &[u8],
    listed: &[&[u8]],
    transfer_encoded: bool,
    extra: &Extra<'_>,
) -> bool {
    match kind {
        Name::Connection
        | Name::HopByHop
        | Name::TransferEncoding
        | Name::RequestId
        | Name::Repeated => false,
        Name::Hsts => extra.hsts.is_none(),
        Name::ContentLength => !transfer_encoded,
        Name::Date
        | Name::ContentType
        | Name::ContentEncoding
        | Name::ContentRange
        | Name::Vary
        | Name::Other => !listed.iter().any(|l| name.eq_ignore_ascii_case(l)),
    }
}

/// The response header names wharf looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Date,
    ContentType,
    ContentEncoding,
    ContentRange,
    Vary,
    Connection,
    ContentLength,
    TransferEncoding,
    /// Never relayed (RFC 9110 7.6.1), `Upgrade` included: the fast path
    /// never relays a 101.
    HopByHop,
    /// `X-Request-Id`: wharf sets its own.
    RequestId,
    /// `Strict-Transport-Security`: wharf sets its own when HSTS is on.
    Hsts,
    /// A `Content-Length` that repeats an earlier one: not relayed.
    /// Never returned by `Name::of`.
    Repeated,
    Other,
}

impl Name {
    /// Found by length first: one comparison for most names, where a
    /// list of names would be compared one by one for every header.
    pub(super) fn of(name: &[u8]) -> Name {
        let is = |known: &[u8]| token_is(name, known);
        match name.len() {
            2 if is(b"te") => Name::HopByHop,
            4 if is(b"date") => Name::Date,
            4 if is(b"vary") => Name::Vary,
            7 if is(b"trailer") || is(b"upgrade") => Name::HopByHop,
            10 if is(b"connection") => Name::Connection,
            10 if is(b"keep-alive") => Name::HopByHop,
            12 if is(b"content-type") => Name::ContentType,
            12 if is(b"x-request-id") => Name::RequestId,
            13 if is(b"content-range") => Name::ContentRange,
            14 if is(b"content-length") => Name::ContentLength,
            16 if is(b"content-encoding") => Name::ContentEncoding,
            16 if is(b"proxy-connection") => Name::HopByHop,
            17 if is(b"transfer-encoding") => Name::TransferEncoding,
            18 if is(b"proxy-authenticate") => Name::HopByHop,
            19 if is(b"proxy-authorization") => Name::HopByHop,
            25 if is(b"strict-transport-security") => Name::Hsts,
            _ => Name::Other,
        }
    }
}

/// Whether the general path would compress this response for a client that
/// asks (`site::Compressible`: tower-http's default predicate minus some
/// statuses), and so marks it `Vary: Accept-Encoding` whatever this client
/// asked. A response that already has a `Content-Encoding` or
/// `Content-Range` is never compressed; the caller checks those.
fn vary_on_encoding(
    status: u16,
    length: Option<u64>,
    transfer_encoded: bool,
    content_type: &[u8],
) -> bool {
    // tower-http compares the value as text (`HeaderValue::to_str`); one
    // with a byte that is not visible ASCII, space or tab counts as no type
    // at all.
    let content_type: &[u8] =
        if all_bytes(content_type, |b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            content_type
        } else {
            b""
        };
    let big_enough = transfer_encoded || length.is_none_or(|n| n >= 32);
    let kind_ok = (!content_type.starts_with(b"application/grpc")
        || content_type.starts_with(b"application/grpc-web"))
        && (!content_type.starts_with(b"image/") || content_type.starts_with(b"image/svg+xml"))
        && !content_type.starts_with(b"text/event-stream");
    !matches!(status, 101 | 204 | 206 | 304) && big_enough && kind_ok
}

/// Whether `haystack` contains `needle`, ASCII case ignored.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}
