//! Request heads: what is relayed, what goes to hyper, and the addresses
//! written into forwarded headers.

use bytes::BytesMut;
use http::Method;

use crate::h1::head::forward::write_ip;
use crate::h1::head::request::{parse_request, Kind, Parsed};

fn parse(text: &str) -> Parsed {
    let mut buf = BytesMut::from(text.as_bytes());
    parse_request(&mut buf, 64 * 1024)
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
        // A `Host` that is an authority, but no `host[:port]`.
        "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: user:secret@a:80\r\n\r\n",
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
