//! Request and response heads on the fast path: parsed by `httparse`,
//! checked for what the fast path can relay, and written back out.
//!
//! Anything unusual in a request (HTTP/1.0, `Transfer-Encoding`, `Expect`,
//! `Upgrade`, a client asking for compression, a head hyper would reject)
//! makes the request `Unusual`: the connection is then handed to hyper,
//! which serves it with the full stack and answers errors as it always did.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::Method;

use crate::observe::trace::Chosen;

/// Most request or response header fields read.
const MAX_HEADERS: usize = 100;

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
    /// (`exchange::copy_compressed`).
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
    fn of(name: &[u8]) -> Kind {
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
    // Copied out rather than split off: the read buffer then keeps its
    // memory alone, and the next read reuses it instead of allocating.
    let head = Bytes::copy_from_slice(&buf[..len]);
    // hyper answers 400 for a target `http` cannot represent, and serves
    // a `Host` that is no authority (empty, say) as the general path does.
    let Ok(target) = PathAndQuery::from_maybe_shared(head.slice(span(target.as_bytes()))) else {
        return Parsed::Unusual;
    };
    let Some(Ok(host)) = host.map(|host| Authority::from_maybe_shared(head.slice(span(host))))
    else {
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

/// A Content-Length value: digits only.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !all_bytes(value, |b| b.is_ascii_digit()) {
        return None;
    }
    // At most 18 digits: below `u64::MAX`.
    Some(
        value
            .iter()
            .fold(0, |length, &digit| length * 10 + u64::from(digit - b'0')),
    )
}

/// Whether every byte of `bytes` is `ok`. Every byte is looked at, without
/// stopping at the first that is not, which lets the compiler check many
/// at once; these are short header values, nearly always all `ok`.
fn all_bytes(bytes: &[u8], ok: impl Fn(u8) -> bool) -> bool {
    bytes.iter().fold(true, |all, &byte| all & ok(byte))
}

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
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
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
    #[error("unexpected 101 Switching Protocols")]
    Switching,
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
        Ok(httparse::Status::Complete(len)) => len,
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
    let mut chunked = false;
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
                (Some(old), Some(n)) if old == n => {}
                _ => return Err(ResponseError::Length),
            },
            Name::TransferEncoding => {
                transfer_encoded = true;
                chunked = field
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            Name::HopByHop | Name::RequestId | Name::Hsts | Name::Other => {}
        }
    }
    let framing = if extra.head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if transfer_encoded {
        // RFC 9112 6.3: Transfer-Encoding wins over Content-Length; a
        // final coding other than chunked runs until close.
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
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

    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&status_digits(status));
    out.extend_from_slice(b" ");
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (field, &kind) in response.headers.iter().zip(names.iter()) {
        let name = field.name.as_bytes();
        if !relayed(kind, name, &listed[..listed_count], transfer_encoded, extra) {
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
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
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
            Ok(httparse::Status::Complete(len)) => len,
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
        let mut chunked = false;
        let mut transfer_encoded = false;
        for (field, slot) in response.headers.iter().zip(spans.iter_mut()) {
            let kind = Name::of(field.name.as_bytes());
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
                    (Some(old), Some(n)) if old == n => {}
                    _ => return Err(ResponseError::Length),
                },
                Name::TransferEncoding => {
                    transfer_encoded = true;
                    chunked = field
                        .value
                        .rsplit(|&b| b == b',')
                        .next()
                        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                }
                _ => {}
            }
            *slot = (kind, span(field.name.as_bytes()), span(field.value));
            count += 1;
        }
        // Second pass over the kept spans: drop what is not relayed.
        let mut kept = 0;
        for index in 0..count {
            let (kind, name, _) = &spans[index];
            let relayed = match kind {
                Name::Connection | Name::HopByHop | Name::TransferEncoding => false,
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
            if chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
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

/// The three digits of a status code (httparse accepts exactly three).
fn status_digits(status: u16) -> [u8; 3] {
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
fn relayed(
    kind: Name,
    name: &[u8],
    listed: &[&[u8]],
    transfer_encoded: bool,
    extra: &Extra<'_>,
) -> bool {
    match kind {
        Name::Connection | Name::HopByHop | Name::TransferEncoding | Name::RequestId => false,
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

/// Whether the header name `name` is `known` (lowercase letters and
/// `-`), ASCII case ignored. Every byte is compared, without stopping at
/// the first that differs, which lets the compiler compare many at once.
/// Setting bit 5 lowercases a letter and leaves `-` as it is; the only
/// other byte it would turn into a letter or `-` is a control byte,
/// which a header name (a token, checked by `httparse`) cannot hold.
fn token_is(name: &[u8], known: &[u8]) -> bool {
    name.len() == known.len()
        && name
            .iter()
            .zip(known)
            .fold(0, |differ, (&byte, &want)| differ | ((byte | 0x20) ^ want))
            == 0
}

/// The response header names wharf looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
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
    Other,
}

impl Name {
    /// Found by length first: one comparison for most names, where a
    /// list of names would be compared one by one for every header.
    fn of(name: &[u8]) -> Name {
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
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    write_extra(out, extra);
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

/// Ends a response head with what the client side adds, and the blank line.
pub fn write_extra(out: &mut Vec<u8>, extra: &Extra<'_>) {
    out.extend_from_slice(b"x-request-id: ");
    out.extend_from_slice(extra.request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(hsts) = extra.hsts {
        out.extend_from_slice(b"strict-transport-security: ");
        out.extend_from_slice(hsts.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if extra.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A short plain-text response like `response::status`, written whole.
pub fn write_status(
    out: &mut Vec<u8>,
    status: http::StatusCode,
    extra: &Extra<'_>,
    more: &[(&str, &str)],
) {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {}\n", status.as_u16(), reason);
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status.as_u16(), reason).as_bytes());
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\n");
    write_date(out);
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    for (name, value) in more {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    write_extra(out, extra);
    if !extra.head_request {
        out.extend_from_slice(body.as_bytes());
    }
}

/// Writes a `date` field for now, as hyper adds to every answer; the
/// text is made once a second per thread.
pub fn write_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            *date = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Writes a chunk header for `len` bytes of data.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_request(&mut buf, 64 * 1024)
    }

    fn mapped(text: &str, head_request: bool) -> (MappedHead, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        match map_response(&mut buf, 64 * 1024, head_request) {
            Ok(MapParse::Complete(head)) => (head, buf),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn a_mapped_response_keeps_end_to_end_headers_and_leaves_the_body() {
        let (head, rest) = mapped(
            "HTTP/1.1 201 Created\r\nServer: app\r\nConnection: keep-alive, X-Secret\r\n\
             X-Secret: 1\r\nKeep-Alive: timeout=5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\
             Content-Length: 5\r\nX-Request-Id: theirs\r\n\r\nhelloHTTP",
            false,
        );
        assert_eq!(head.parts.status, 201);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.reusable);
        let headers = &head.parts.headers;
        assert_eq!(
            headers.get("server").map(|v| v.as_bytes()),
            Some(&b"app"[..])
        );
        assert_eq!(
            headers.get_all("set-cookie").iter().count(),
            2,
            "repeated headers kept"
        );
        assert_eq!(
            headers.get("content-length").map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        for gone in ["connection", "x-secret", "keep-alive"] {
            assert!(!headers.contains_key(gone), "{gone} relayed");
        }
        // The general path sets its own id over this one.
        assert!(headers.contains_key("x-request-id"));
        assert!(head
            .parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .is_none());
        assert_eq!(&rest[..], b"helloHTTP", "the body stays in the buffer");
    }

    #[test]
    fn mapped_framing_follows_rfc_9112() {
        let chunked = mapped(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        )
        .0;
        assert_eq!(chunked.framing, Framing::Chunked);
        assert!(chunked.reusable);
        assert!(!chunked.parts.headers.contains_key("transfer-encoding"));
        assert!(
            !chunked.parts.headers.contains_key("content-length"),
            "a length beside Transfer-Encoding is not the decoded body's"
        );
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Framing::Close,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, Framing::Close, false),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
                false,
                Framing::Length(3),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
                false,
                Framing::Length(3),
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                true,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
        ];
        for (text, head_request, framing, reusable) in cases {
            let (head, _) = mapped(text, head_request);
            assert_eq!(head.framing, framing, "{text:?}");
            assert_eq!(head.reusable, reusable, "{text:?}");
        }
        let (old, _) = mapped("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false);
        assert_eq!(old.parts.version, http::Version::HTTP_10);
    }

    #[test]
    fn mapping_skips_1xx_waits_for_the_whole_head_and_refuses_bad_ones() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200"[..]);
        assert!(matches!(
            map_response(&mut buf, 1024, false),
            Ok(MapParse::Informational(40))
        ));
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nServer: a"[..]);
        assert!(matches!(
            map_response(&mut partial, 1024, false),
            Ok(MapParse::Partial)
        ));
        assert!(matches!(
            map_response(&mut partial, 10, false),
            Err(ResponseError::TooLarge(10))
        ));
        for bad in [
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(bad.as_bytes());
            assert!(
                map_response(&mut buf, 1024, false).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn a_reason_other_than_the_usual_one_is_kept() {
        let (head, _) = mapped(
            "HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        let reason = head.parts.extensions.get::<hyper::ext::ReasonPhrase>();
        assert_eq!(reason.map(|r| r.as_bytes()), Some(&b"Fine Thanks"[..]));
    }

    #[test]
    fn a_missing_or_unreadable_reason_is_no_error() {
        for head in [
            "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200\nContent-Length: 0\n\n",
            "HTTP/1.1 200 \u{d6}kay\r\nContent-Length: 0\r\n\r\n",
        ] {
            let (head, _) = mapped(head, false);
            assert_eq!(head.parts.status, 200);
            assert!(head
                .parts
                .extensions
                .get::<hyper::ext::ReasonPhrase>()
                .is_none());
        }
    }

    #[test]
    fn a_plain_request_is_relayed() {
        let mut buf = BytesMut::from(
            &b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Two: 1\r\nX-Two: 2\r\nContent-Length: 3\r\n\r\nabcGET"[..],
        );
        let Parsed::Head(head) = parse_request(&mut buf, 1024) else {
            panic!("not relayed");
        };
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.path(), "/a/b");
        assert_eq!(head.query(), Some("x=1"));
        assert_eq!(head.host(), "example.com");
        assert_eq!(head.target.as_str(), "/a/b?x=1");
        assert_eq!(head.content_length, 3);
        assert_eq!(head.header_map().get_all("x-two").iter().count(), 2);
        assert!(head.plain);
        assert_eq!(&buf[..], b"abcGET", "the body stays in the buffer");
    }

    #[test]
    fn hosts_with_ports_and_ipv6_literals_are_relayed_as_sent() {
        for host in [
            "Example.COM:8080",
            "[::1]:19010",
            "127.0.0.1",
            "my_app.internal",
        ] {
            let text = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let Parsed::Head(head) = parse(&text) else {
                panic!("{host} not relayed");
            };
            assert_eq!(head.host(), host);
        }
    }

    #[test]
    fn unusual_requests_go_to_hyper_untouched() {
        for text in [
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
            // A `Host` that is no authority.
            "GET / HTTP/1.1\r\nHost: \r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: é.example\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(text.as_bytes());
            assert!(
                matches!(parse_request(&mut buf, 1024), Parsed::Unusual),
                "{text:?}"
            );
            assert_eq!(&buf[..], text.as_bytes(), "buffer kept for hyper");
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "127.0.0.1",
            "192.168.100.255",
            "9.99.100.1",
            "::1",
            "2001:db8::7",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("ip");
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }

    #[test]
    fn clients_asking_for_compression_stay_on_the_fast_path() {
        for (accept, compress) in [
            ("identity", false),
            ("gzip;q=0", false),
            ("gzip, deflate", true),
            ("br;q=0.5, zstd", true),
            ("*", true),
        ] {
            let text = format!("GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {accept}\r\n\r\n");
            match parse(&text) {
                Parsed::Head(head) => assert_eq!(head.compress, compress, "{accept}"),
                _ => panic!("{accept} left the fast path"),
            }
        }
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: a"),
            Parsed::Partial
        ));
    }

    fn response(text: &str, head_request: bool) -> (ResponseHead, String) {
        let id = HeaderValue::from_static("req-1");
        let extra = Extra {
            request_id: &id,
            hsts: None,
            close: false,
            head_request,
            compress: false,
        };
        let mut out = Vec::new();
        match parse_response(text.as_bytes(), 1024, &extra, &mut out).expect("valid") {
            ResponseParse::Complete(head) => (head, String::from_utf8(out).expect("utf-8")),
            _ => panic!("incomplete"),
        }
    }

    #[test]
    fn a_status_under_100_is_refused_not_relayed() {
        let id = HeaderValue::from_static("req-1");
        let extra = Extra {
            request_id: &id,
            hsts: None,
            close: false,
            head_request: false,
            compress: false,
        };
        for text in ["HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 000 Zero\r\n\r\n"] {
            let mut out = Vec::new();
            assert!(
                matches!(
                    parse_response(text.as_bytes(), 1024, &extra, &mut out),
                    Err(ResponseError::Parse(httparse::Error::Status))
                ),
                "{text:?} accepted"
            );
            assert!(out.is_empty(), "{text:?} written: {out:?}");
        }
    }

    /// A body of a known or unknown size, as the general path's compression
    /// layer sees the upstream's body.
    struct Sized(Option<u64>);

    impl http_body::Body for Sized {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(None)
        }
        fn size_hint(&self) -> http_body::SizeHint {
            self.0
                .map(http_body::SizeHint::with_exact)
                .unwrap_or_default()
        }
    }

    /// The fast path marks a response `Vary: Accept-Encoding` exactly when
    /// the general path's compression layer would.
    #[test]
    fn vary_on_accept_encoding_matches_the_compression_layer() {
        use tower_http::compression::predicate::Predicate;
        let predicate = crate::site::Compressible::default();
        let types = [
            None,
            Some("text/html; charset=utf-8"),
            Some("application/json"),
            Some("Text/HTML"),
            Some("image/png"),
            Some("image/svg+xml"),
            Some("application/grpc"),
            Some("application/grpc-web+proto"),
            Some("text/event-stream"),
            Some("text/plain; name=\"é\""),
        ];
        let others = [
            "",
            "Content-Encoding: gzip\r\n",
            "Content-Range: bytes 0-99/200\r\n",
            "Vary: Origin, Accept-Encoding\r\n",
            "Vary: Origin\r\n",
        ];
        let mut compressible = 0;
        for status in [200, 201, 204, 206, 304, 404, 500] {
            for content_type in types {
                for length in [None, Some(0), Some(31), Some(32), Some(5000)] {
                    for other in others {
                        let mut text = format!("HTTP/1.1 {status} X\r\n{other}");
                        let mut expected = http::Response::builder().status(status);
                        if let Some(kind) = content_type {
                            text.push_str(&format!("Content-Type: {kind}\r\n"));
                            expected = expected.header("content-type", kind.as_bytes());
                        }
                        match length {
                            Some(n) => text.push_str(&format!("Content-Length: {n}\r\n")),
                            None => text.push_str("Transfer-Encoding: chunked\r\n"),
                        }
                        text.push_str("\r\n");
                        if let Some((name, value)) = other.trim_end().split_once(": ") {
                            expected = expected.header(name, value);
                        }
                        let expected = expected.body(Sized(length)).expect("response");
                        let headers = expected.headers();
                        let layer_adds = !headers.contains_key("content-encoding")
                            && !headers.contains_key("content-range")
                            && predicate.should_compress(&expected)
                            && !other.contains("Accept-Encoding");
                        compressible += usize::from(layer_adds);
                        let (_, out) = response(&text, false);
                        assert_eq!(
                            out.contains("vary: accept-encoding"),
                            layer_adds,
                            "{text:?} gave {out:?}"
                        );
                    }
                }
            }
        }
        assert!(compressible > 100, "{compressible} cases compressible");
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_gain_the_request_id() {
        let (head, out) = response(
            "HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 22:00:00 GMT\r\nContent-Length: 5\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: upstream\r\nX-Kept: yes\r\n\r\nhello",
            false,
        );
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.reusable);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 22:00:00 GMT\r\nContent-Length: 5\r\nX-Kept: yes\r\nx-request-id: req-1\r\n\r\n"
        );
    }

    #[test]
    fn every_hop_by_hop_name_is_dropped_in_any_case_and_others_kept() {
        let hop = [
            "Connection: Keep-Alive",
            "KEEP-ALIVE: timeout=5",
            "Proxy-Connection: keep-alive",
            "proxy-authenticate: Basic",
            "Proxy-Authorization: Basic eA==",
            "TE: trailers",
            "Trailer: Expires",
            "Upgrade: h2c",
            "x-request-ID: theirs",
        ];
        // Same lengths as names wharf knows, and names that start like them.
        let kept = [
            "Tx: 1",
            "Dates: 2",
            "Trailers: 3",
            "Connections: 4",
            "Content-Typo: 5",
            "X-Request-Ids: 6",
            "Content-Length: 0",
            "Strict-Transport-Security: max-age=1",
        ];
        let text = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n{}\r\n\r\n",
            hop.join("\r\n"),
            kept.join("\r\n")
        );
        let (head, out) = response(&text, false);
        assert_eq!(head.framing, Framing::Length(0));
        for line in hop {
            assert!(!out.contains(line), "{line:?} relayed: {out:?}");
        }
        for line in kept {
            assert!(out.contains(line), "{line:?} dropped: {out:?}");
        }

        // With HSTS on, wharf's own header replaces the upstream's.
        let id = HeaderValue::from_static("req-1");
        let hsts = HeaderValue::from_static("max-age=63072000");
        let extra = Extra {
            request_id: &id,
            hsts: Some(&hsts),
            close: false,
            head_request: false,
            compress: false,
        };
        let mut out = Vec::new();
        parse_response(text.as_bytes(), 1024, &extra, &mut out).expect("valid");
        let out = String::from_utf8(out).expect("utf-8");
        assert!(!out.contains("max-age=1"), "{out}");
        assert!(out.contains("strict-transport-security: max-age=63072000\r\n"));
    }

    #[test]
    fn request_header_kinds_are_found_in_any_case() {
        let known = [
            ("host", Kind::Host),
            ("connection", Kind::Connection),
            ("user-agent", Kind::UserAgent),
            ("x-forwarded-for", Kind::ForwardedFor),
            ("x-forwarded-proto", Kind::ForwardedProto),
            ("x-forwarded-host", Kind::ForwardedHost),
            ("x-real-ip", Kind::RealIp),
            ("forwarded", Kind::Forwarded),
            ("referer", Kind::Referer),
            ("x-request-id", Kind::RequestId),
            ("traceparent", Kind::Traceparent),
            ("tracestate", Kind::Tracestate),
            ("keep-alive", Kind::HopByHop),
            ("proxy-connection", Kind::HopByHop),
            ("proxy-authenticate", Kind::HopByHop),
            ("proxy-authorization", Kind::HopByHop),
            ("te", Kind::HopByHop),
            ("trailer", Kind::HopByHop),
        ];
        for (name, kind) in known {
            assert_eq!(Kind::of(name.as_bytes()), kind, "{name}");
            assert_eq!(
                Kind::of(name.to_ascii_uppercase().as_bytes()),
                kind,
                "{name}"
            );
            // One letter changed: the same length, another name.
            let other = name.replacen(|c: char| c.is_ascii_alphabetic(), "q", 1);
            assert_eq!(Kind::of(other.as_bytes()), Kind::Other, "{other}");
        }
        assert_eq!(Kind::of(b"Accept"), Kind::Other);
    }

    #[test]
    fn content_lengths_are_read_as_digits_only() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"13"), Some(13));
        assert_eq!(
            parse_length(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"1 ",
            b"+1",
            b"-1",
            b"1.0",
            b"0x10",
            b"1234567890123456789",
        ] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_names_are_matched_ignoring_case_only() {
        assert!(token_is(b"Content-Length", b"content-length"));
        assert!(token_is(b"CONTENT-LENGTH", b"content-length"));
        assert!(!token_is(b"content-lengthx", b"content-length"));
        assert!(!token_is(b"content_length", b"content-length"));
        assert!(!token_is(b"content-lengti", b"content-length"));
        // Every token byte but the letters' two cases differs.
        for byte in (0x21..0x7fu8).filter(|byte| !byte.is_ascii_alphabetic() && *byte != b'-') {
            let name = [b't', byte];
            assert!(!token_is(&name, b"te"), "{byte:#x}");
        }
        assert_eq!(Name::of(b"Date"), Name::Date);
        assert_eq!(Name::of(b"TE"), Name::HopByHop);
        assert_eq!(Name::of(b"Te-"), Name::Other);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (head, out) = response(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!out.to_ascii_lowercase().contains("content-length"));
        let (head, _) = response("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!(head.framing, Framing::Close);
        assert!(!head.reusable);
        let (head, _) = response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
        assert_eq!(head.framing, Framing::Empty);
        let (head, _) = response("HTTP/1.1 304 Not Modified\r\n\r\n", false);
        assert_eq!(head.framing, Framing::Empty);
        let (head, _) = response("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false);
        assert!(!head.reusable);
        let (head, _) = response(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        );
        assert!(!head.reusable);
    }
}
