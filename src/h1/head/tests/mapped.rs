//! Response heads mapped for the general path: headers kept and left
//! out, framing, 1xx answers, partial and bad heads, reason phrases.

use bytes::BytesMut;

use crate::h1::head::mapped::{map_response, MapParse, MappedHead};
use crate::h1::head::response::{Framing, ResponseError};

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
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
        false,
    )
    .0;
    assert_eq!(chunked.framing, Framing::Chunked);
    assert!(chunked.reusable);
    assert!(!chunked.parts.headers.contains_key("transfer-encoding"));
    // A coding other than chunked alone would reach the client still
    // coded, its header gone: refused.
    for coding in ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked"] {
        let mut coded = BytesMut::from(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\n\r\n").as_bytes(),
        );
        assert!(
            matches!(
                map_response(&mut coded, 64 * 1024, false),
                Err(ResponseError::Coding)
            ),
            "{coding}"
        );
    }
    // A length beside Transfer-Encoding is refused (RFC 9112 6.3).
    let mut both = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"[..],
    );
    assert!(matches!(
        map_response(&mut both, 64 * 1024, false),
        Err(ResponseError::LengthAndEncoding)
    ));
    // The same length twice is one length, kept once.
    let twice = mapped(
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 9\r\n\r\n",
        false,
    )
    .0;
    assert_eq!(twice.framing, Framing::Length(9));
    assert_eq!(
        twice.parts.headers.get_all("content-length").iter().count(),
        1
    );
    let cases = [
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
