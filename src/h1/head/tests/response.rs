//! Response heads rewritten for the client: status checks, hop-by-hop
//! headers, `Vary`, HSTS and framing.

use http::header::HeaderValue;

use crate::h1::head::response::{
    parse_response, Extra, Framing, ResponseError, ResponseHead, ResponseParse,
};

fn response(text: &str, head_request: bool) -> (ResponseHead, String) {
    let id = HeaderValue::from_static("req-1");
    let extra = Extra {
        route: None,
        pages: None,
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
        route: None,
        pages: None,
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
        route: None,
        pages: None,
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
fn framing_follows_rfc_9112() {
    let (head, _) = response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
    );
    assert_eq!(head.framing, Framing::Chunked);
    // Any other coding would reach the client still coded: refused.
    let id = HeaderValue::from_static("req-1");
    let plain = Extra {
        request_id: &id,
        hsts: None,
        close: false,
        head_request: false,
        compress: false,
        route: None,
        pages: None,
    };
    for coding in ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked"] {
        let text = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\n\r\n");
        assert!(
            matches!(
                parse_response(text.as_bytes(), 1024, &plain, &mut Vec::new()),
                Err(ResponseError::Coding)
            ),
            "{coding}"
        );
    }
    let (head, out) = response(
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 9\r\n\r\n",
        false,
    );
    assert_eq!(head.framing, Framing::Length(9));
    assert_eq!(out.matches("Content-Length").count(), 1, "{out}");
    // A length beside Transfer-Encoding is refused (RFC 9112 6.3), whatever
    // the order and the coding.
    let id = HeaderValue::from_static("req-1");
    let extra = Extra {
        request_id: &id,
        hsts: None,
        close: false,
        head_request: false,
        compress: false,
        route: None,
        pages: None,
    };
    for text in [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: gzip\r\n\r\n",
    ] {
        assert!(
            matches!(
                parse_response(text.as_bytes(), 1024, &extra, &mut Vec::new()),
                Err(ResponseError::LengthAndEncoding)
            ),
            "{text:?}"
        );
    }
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

#[test]
fn a_whole_head_over_the_limit_is_refused() {
    let id = HeaderValue::from_static("req-1");
    let extra = Extra {
        request_id: &id,
        hsts: None,
        close: false,
        head_request: false,
        compress: false,
        route: None,
        pages: None,
    };
    let text = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "x".repeat(2000)
    );
    assert!(matches!(
        parse_response(text.as_bytes(), 1024, &extra, &mut Vec::new()),
        Err(ResponseError::TooLarge(1024))
    ));
    let mut buf = bytes::BytesMut::from(text.as_bytes());
    assert!(matches!(
        crate::h1::head::map_response(&mut buf, 1024, false),
        Err(ResponseError::TooLarge(1024))
    ));
}
