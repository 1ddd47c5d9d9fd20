//! The client's request head: parsed by `httparse`, its fields sorted by
//! what the fast path does with them, and judged relayable or `Unusual`.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::Method;

use super::{all_bytes, parse_length, token_is, MAX_HEADERS};
use crate::route::valid_host;

/// A request head the fast path can relay.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    /// The origin-form target, path and query; checked once, read as
    /// text from then on without checking again.
    pub target: PathAndQuery,
    /// The header fields, in the order they came, as spans of `raw`.
    pub fields: Vec<Field>,
    /// The declared body length (0 when there is none).
    pub content_length: u64,
    /// The client asked to close the connection after this request.
    pub close: bool,
    /// The client accepts an encoding wharf compresses with
    /// (`Accept-Encoding`): a compressible answer is compressed
    /// (`exchange::compress::copy_compressed`).
    pub compress: bool,
    /// No hop-by-hop header other than `Connection: close` or
    /// `keep-alive`: the head can be forwarded field by field
    /// (`write_forwarded`) instead of through a `HeaderMap`.
    pub plain: bool,
    /// The head as it arrived, to give it back when hyper takes over.
    pub raw: Bytes,
    /// The one `Host` field's value.
    host: Authority,
}

/// The header fields the fast path treats specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Host,
    Connection,
    /// Hop-by-hop (RFC 9110 7.6.1) other than `Connection`.
    HopByHop,
    ForwardedFor,
    /// RFC 7239 `Forwarded`: dropped from clients that are not trusted
    /// proxies, like the `X-Forwarded-*` fields.
    Forwarded,
    ForwardedProto,
    ForwardedHost,
    RealIp,
    RequestId,
    Traceparent,
    Tracestate,
    UserAgent,
    Referer,
    Other,
}

impl Kind {
    /// Found by length first, like `Name::of`.
    pub(super) fn of(name: &[u8]) -> Kind {
        let is = |known: &[u8]| token_is(name, known);
        match name.len() {
            2 if is(b"te") => Kind::HopByHop,
            4 if is(b"host") => Kind::Host,
            7 if is(b"trailer") => Kind::HopByHop,
            7 if is(b"referer") => Kind::Referer,
            9 if is(b"x-real-ip") => Kind::RealIp,
            9 if is(b"forwarded") => Kind::Forwarded,
            10 if is(b"connection") => Kind::Connection,
            10 if is(b"user-agent") => Kind::UserAgent,
            10 if is(b"keep-alive") => Kind::HopByHop,
            10 if is(b"tracestate") => Kind::Tracestate,
            11 if is(b"traceparent") => Kind::Traceparent,
            12 if is(b"x-request-id") => Kind::RequestId,
            15 if is(b"x-forwarded-for") => Kind::ForwardedFor,
            16 if is(b"x-forwarded-host") => Kind::ForwardedHost,
            16 if is(b"proxy-connection") => Kind::HopByHop,
            17 if is(b"x-forwarded-proto") => Kind::ForwardedProto,
            18 if is(b"proxy-authenticate") => Kind::HopByHop,
            19 if is(b"proxy-authorization") => Kind::HopByHop,
            _ => Kind::Other,
        }
    }
}

/// One header field: what it is and where its name and value are in the
/// raw head.
#[derive(Debug, Clone)]
pub struct Field {
    pub kind: Kind,
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl RequestHead {
    pub fn path(&self) -> &str {
        self.target.path()
    }

    pub fn query(&self) -> Option<&str> {
        self.target.query()
    }

    pub fn host(&self) -> &str {
        self.host.as_str()
    }

    pub fn name(&self, field: &Field) -> &[u8] {
        &self.raw[field.name.clone()]
    }

    pub fn value(&self, field: &Field) -> &[u8] {
        &self.raw[field.value.clone()]
    }

    /// A field's value as a header value sharing the raw head's memory.
    pub fn header_value(&self, field: &Field) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(self.raw.slice(field.value.clone())).ok()
    }

    /// The first field of `kind`.
    pub fn first(&self, kind: Kind) -> Option<&Field> {
        self.fields.iter().find(|field| field.kind == kind)
    }

    /// The fields as a `HeaderMap`, for the rewriting `proxy::headers`
    /// does when the head is not `plain` or the peer is a trusted proxy.
    pub fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.fields.len() + 6);
        for field in &self.fields {
            // Both were checked when the head was parsed.
            if let (Ok(name), Some(value)) = (
                HeaderName::from_bytes(self.name(field)),
                self.header_value(field),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }
}

/// What the bytes read so far hold.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A head the fast path relays; it was taken off the buffer.
    Head(RequestHead),
    /// Something for hyper to serve (or reject); the buffer is untouched.
    Unusual,
}

/// Parses a request head at the start of `buf`. `max_head` is
/// `server.max_header_size`: a longer head goes to hyper, which answers 431.
pub fn parse_request(buf: &mut BytesMut, max_head: usize) -> Parsed {
    // Uninitialised: filling 100 empty headers first costs more than
    // parsing a short head.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_head => return Parsed::Partial,
        _ => return Parsed::Unusual,
    };
    if len > max_head || request.version != Some(1) {
        return Parsed::Unusual;
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Parsed::Unusual;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Unusual;
    };
    if method == Method::CONNECT || !target.starts_with('/') {
        return Parsed::Unusual;
    }

    let mut content_length = None;
    let mut close = false;
    let mut compress = false;
    let mut plain = true;
    let mut host: Option<&[u8]> = None;
    let base = buf.as_ptr() as usize;
    let span = |bytes: &[u8]| {
        let start = bytes.as_ptr() as usize - base;
        start..start + bytes.len()
    };
    let mut spans = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = field.name.as_bytes();
        let value = field.value;
        let kind = Kind::of(name);
        match kind {
            Kind::Host if host.is_some() => return Parsed::Unusual,
            Kind::Host => host = Some(value),
            Kind::Connection => {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        return Parsed::Unusual;
                    } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                        // It names headers to remove before forwarding.
                        plain = false;
                    }
                }
            }
            Kind::HopByHop => plain = false,
            Kind::Other => {
                if name.eq_ignore_ascii_case(b"content-length") {
                    match (content_length, parse_length(value)) {
                        (None, Some(length)) => content_length = Some(length),
                        _ => return Parsed::Unusual,
                    }
                } else if name.eq_ignore_ascii_case(b"accept-encoding") {
                    compress |= wants_compression(value);
                } else if name.eq_ignore_ascii_case(b"transfer-encoding")
                    || name.eq_ignore_ascii_case(b"upgrade")
                    || name.eq_ignore_ascii_case(b"expect")
                {
                    return Parsed::Unusual;
                }
            }
            _ => {}
        }
        // What `HeaderValue` accepts; hyper decides about anything else.
        if !all_bytes(value, |b| (b >= 0x20 && b != 0x7f) || b == b'\t') {
            return Parsed::Unusual;
        }
        spans.push(Field {
            kind,
            name: span(name),
            value: span(value),
        });
    }
    // hyper answers 400 for a `Host` that is no `host[:port]` (one with
    // userinfo, say), and serves an empty one as the general path does.
    let Some(host) = host.filter(|host| valid_host(host)) else {
        return Parsed::Unusual;
    };
    // Copied out rather than split off: the read buffer then keeps its
    // memory alone, and the next read reuses it instead of allocating.
    let head = Bytes::copy_from_slice(&buf[..len]);
    // hyper answers 400 for a target `http` cannot represent.
    let Ok(target) = PathAndQuery::from_maybe_shared(head.slice(span(target.as_bytes()))) else {
        return Parsed::Unusual;
    };
    let Ok(host) = Authority::from_maybe_shared(head.slice(span(host))) else {
        return Parsed::Unusual;
    };
    buf.advance(len);
    Parsed::Head(RequestHead {
        method,
        target,
        fields: spans,
        content_length: content_length.unwrap_or(0),
        close,
        compress,
        plain,
        raw: head,
        host,
    })
}

/// Whether an `Accept-Encoding` value names an encoding wharf compresses
/// with; compressible answers to such requests are compressed.
fn wants_compression(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let mut parts = item.split(|&b| b == b';');
        let coding = parts.next().unwrap_or_default().trim_ascii();
        let refused = parts.any(|param| {
            let param = param.trim_ascii();
            param.len() > 2
                && param[..2].eq_ignore_ascii_case(b"q=")
                && std::str::from_utf8(&param[2..])
                    .ok()
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
        });
        !refused
            && [&b"gzip"[..], b"br", b"zstd", b"deflate", b"*"]
                .iter()
                .any(|known| coding.eq_ignore_ascii_case(known))
    })
}
