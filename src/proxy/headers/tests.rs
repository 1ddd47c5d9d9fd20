//! Forwarded headers believed only from trusted proxies, hop-by-hop
//! headers removed, and the client's address worked out.

use super::*;

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

#[test]
fn hop_by_hop_and_connection_named_headers_are_removed() {
    let mut map = h(&[
        ("connection", "keep-alive, x-secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("proxy-authorization", "Basic x"),
        ("te", "gzip"),
        ("upgrade", "h2c"),
        ("x-kept", "yes"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(map.len(), 1);
    assert_eq!(map["x-kept"], "yes");
}

#[test]
fn headers_named_in_connection_go_with_it_and_others_stay() {
    // The usual response: only `Connection: keep-alive`.
    let mut map = h(&[
        ("connection", "keep-alive"),
        ("server", "app"),
        ("content-length", "2"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(map.len(), 2);
    assert!(!map.contains_key("connection"));

    // Every token of every `Connection` line, `close` included, in
    // any case; `Upgrade` named or not.
    let mut map = h(&[
        ("connection", "close, X-One"),
        ("connection", "x-two ,Upgrade"),
        ("close", "a header really named close"),
        ("x-one", "1"),
        ("x-two", "2"),
        ("upgrade", "websocket"),
        ("trailer", "x-sum"),
        ("transfer-encoding", "chunked"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authenticate", "Basic"),
        ("x-kept", "yes"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(map.len(), 1, "{map:?}");
    assert_eq!(map["x-kept"], "yes");
}

#[test]
fn connection_never_takes_the_length_away() {
    let mut map = h(&[("connection", "Content-Length"), ("content-length", "35")]);
    strip_hop_by_hop(&mut map);
    assert_eq!(map.len(), 1, "{map:?}");
}

#[test]
fn te_index_names_te() {
    assert_eq!(HOP_BY_HOP[TE_INDEX], header::TE);
    // `TE` other than trailers goes, trailers among others stays alone.
    let mut map = h(&[("te", "deflate, trailers;q=1")]);
    strip_hop_by_hop(&mut map);
    assert!(!map.contains_key("te"));
    let mut map = h(&[("te", "deflate, trailers")]);
    strip_hop_by_hop(&mut map);
    assert_eq!(map["te"], "trailers");
}

#[test]
fn te_trailers_survives_for_grpc() {
    let mut map = h(&[("te", "trailers")]);
    strip_hop_by_hop(&mut map);
    assert_eq!(map["te"], "trailers");
}

#[test]
fn untrusted_peer_cannot_spoof_forwarded_headers() {
    let mut map = h(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil"),
        ("x-real-ip", "6.6.6.6"),
    ]);
    let peer: IpAddr = "203.0.113.9".parse().expect("ip");
    let host = HeaderValue::from_static("example.com");
    let peer_header = HeaderValue::from_static("203.0.113.9");
    let fwd = Forwarding {
        peer,
        peer_trusted: false,
        scheme: "http",
        host: Some(&host),
        peer_header: &peer_header,
    };
    let client = client_ip(&map, peer, |_| false);
    set_forwarded(&mut map, fwd, client);
    assert_eq!(map["x-forwarded-for"], "203.0.113.9");
    assert_eq!(map["x-real-ip"], "203.0.113.9");
    assert_eq!(map["x-forwarded-proto"], "http");
    assert_eq!(map["x-forwarded-host"], "example.com");
}

#[test]
fn trusted_proxy_chain_is_extended_and_real_ip_found() {
    let mut map = h(&[
        ("x-forwarded-for", "198.51.100.7, 10.0.0.2"),
        ("x-forwarded-proto", "https"),
    ]);
    let peer: IpAddr = "10.0.0.1".parse().expect("ip");
    let trusted = |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 10);
    let client = client_ip(&map, peer, trusted);
    assert_eq!(client, "198.51.100.7".parse::<IpAddr>().expect("ip"));
    let peer_header = HeaderValue::from_static("10.0.0.1");
    let fwd = Forwarding {
        peer,
        peer_trusted: true,
        scheme: "http",
        host: None,
        peer_header: &peer_header,
    };
    set_forwarded(&mut map, fwd, client);
    assert_eq!(map["x-forwarded-for"], "198.51.100.7, 10.0.0.2, 10.0.0.1");
    assert_eq!(map["x-forwarded-proto"], "https");
    assert_eq!(map["x-real-ip"], "198.51.100.7");
}
