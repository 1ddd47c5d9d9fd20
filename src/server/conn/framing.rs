//! HTTP/1 requests refused before routing: a missing, doubled or invalid
//! `Host` (RFC 9112 3.2), and a `Transfer-Encoding` that hyper framed by
//! its final `chunked` but that says more than that (RFC 9112 6.1):
//! `chunked` twice is 400 (the body would have to be decoded twice), and
//! another coding before it is one wharf does not implement, 501, as
//! nginx answers. Either would reach the upstream as a body that is not
//! what the client framed.
//!
//! hyper refuses the rest of the faulty framing RFC 9112 6.3 names (a
//! coding list that does not end in `chunked`, lengths that differ or are
//! no number, `Transfer-Encoding` in HTTP/1.0) and, when `chunked`
//! overrides a `Content-Length`, drops the length and closes the
//! connection after the answer.
//!
//! A refusal closes the connection: what follows a refused request (its
//! body, a request pipelined behind it) cannot be trusted to be framed as
//! the client meant.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version};

use crate::body::Body;
use crate::response;
use crate::route::valid_host;

/// Why a request is refused, or `None`. HTTP/2 frames its own messages:
/// only its `:authority` (and a `Host` beside it) must be a `host[:port]`,
/// so that no userinfo or path reaches the upstream as its `Host`.
pub(super) fn refused<B>(req: &Request<B>) -> Option<StatusCode> {
    if req.version() > Version::HTTP_11 {
        let authority = req.uri().authority().map(|a| a.as_str().as_bytes());
        let host = req.headers().get(header::HOST).map(HeaderValue::as_bytes);
        let bad = [authority, host]
            .into_iter()
            .flatten()
            .any(|value| !valid_host(value));
        return bad.then_some(StatusCode::BAD_REQUEST);
    }
    if bad_host(req) {
        return Some(StatusCode::BAD_REQUEST);
    }
    transfer_codings(req.headers())
}

/// wharf's answer to a refused request: the status, and over HTTP/1 the
/// connection closed after it (an HTTP/2 stream ends on its own).
pub(super) fn refusal(status: StatusCode, version: Version) -> Response<Body> {
    let mut response = response::status(status);
    if version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// RFC 9112 3.2: an HTTP/1.1 request without `Host` (and no authority in
/// its target), a request with more than one, or with one that is no
/// `host[:port]`, is answered 400, not routed as if it had asked for no
/// host or for what a backend might read differently. The authority of
/// an absolute-form target, which wins over `Host`, is held to the same.
fn bad_host<B>(req: &Request<B>) -> bool {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return true;
    }
    let authority = req.uri().authority();
    if authority.is_some_and(|authority| !valid_host(authority.as_str().as_bytes())) {
        return true;
    }
    match first {
        Some(host) => !valid_host(host.as_bytes()),
        None => req.version() == Version::HTTP_11 && authority.is_none(),
    }
}

/// hyper accepted the request's `Transfer-Encoding` only if its last
/// coding is `chunked`: any coding before that one is refused.
fn transfer_codings(headers: &HeaderMap) -> Option<StatusCode> {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    // The last one, `chunked`, is not among those looked at.
    let mut refused = None;
    let mut next = codings.next();
    while let Some(coding) = next {
        next = codings.next();
        if next.is_none() {
            break;
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            return Some(StatusCode::BAD_REQUEST);
        }
        refused = Some(StatusCode::NOT_IMPLEMENTED);
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codings(values: &[&str]) -> Option<StatusCode> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::TRANSFER_ENCODING,
                HeaderValue::from_str(value).expect("value"),
            );
        }
        transfer_codings(&headers)
    }

    #[test]
    fn only_chunked_alone_passes() {
        assert_eq!(codings(&[]), None);
        assert_eq!(codings(&["chunked"]), None);
        assert_eq!(codings(&["Chunked"]), None);
        assert_eq!(codings(&[" , chunked"]), None);
        let bad = Some(StatusCode::BAD_REQUEST);
        assert_eq!(codings(&["chunked, chunked"]), bad);
        assert_eq!(codings(&["chunked", "chunked"]), bad);
        assert_eq!(codings(&["gzip, chunked, chunked"]), bad);
        let unknown = Some(StatusCode::NOT_IMPLEMENTED);
        assert_eq!(codings(&["gzip, chunked"]), unknown);
        assert_eq!(codings(&["gzip", "chunked"]), unknown);
        assert_eq!(codings(&["identity, chunked"]), unknown);
    }
}
