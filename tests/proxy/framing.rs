//! However an upstream frames its answer (a length, chunked with
//! trailers, until close, after 1xx answers, too short, not HTTP at all, a
//! 204 with a length), HTTP/1.1 and HTTP/2 clients get a correct one.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_answers_are_relayed_whatever_the_upstream_framing_and_reuse_follows_it() {
    use std::sync::atomic::Ordering;
    let (backend, accepted) = scripted_backend(vec![
        (
            "/length",
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-App: 1\r\n",
                b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\r\nhello",
                b" world",
            ],
            false,
        ),
        (
            "/chunked",
            vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                b"lo\r\n1;ext=1\r\n \r\n5\r\nworld\r\n3\r\nabc\r\n",
                b"0\r\nX-Trailer: t\r\n\r\n",
            ],
            false,
        ),
        (
            "/early-hints",
            vec![
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
            ],
            false,
        ),
        ("/empty", vec![b"HTTP/1.1 204 No Content\r\n\r\n"], false),
        (
            "/head",
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"],
            false,
        ),
        (
            "/until-close",
            vec![b"HTTP/1.1 200 OK\r\n\r\nall of ", b"this"],
            true,
        ),
        (
            "/short",
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"],
            true,
        ),
        ("/garbage", vec![b"SPDY/3 200 OK\r\n\r\n"], true),
    ])
    .await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h2 = h2c_client();

    // Kept-alive framings: all of them over one upstream connection.
    for round in 0..2 {
        let reply = send(&h2, Method::GET, &wharf.url("/length"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "hello world");
        assert_eq!(reply.header("x-app"), Some("1"));
        assert_eq!(
            reply.header("x-hop"),
            None,
            "a header Connection names was relayed"
        );
        assert!(reply.header("x-request-id").is_some());

        let reply = send(&h2, Method::GET, &wharf.url("/chunked"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "hello worldabc", "chunks decoded");

        let reply = send(&h2, Method::GET, &wharf.url("/early-hints"), &[], b"").await;
        assert_eq!(reply.status, 404, "the final answer after a 1xx");
        assert_eq!(reply.text(), "nope");

        let reply = send(&h2, Method::GET, &wharf.url("/empty"), &[], b"").await;
        assert_eq!(reply.status, 204);
        assert!(reply.body.is_empty());

        let reply = send(&h2, Method::HEAD, &wharf.url("/head"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.body.is_empty(),
            "HEAD: no body whatever the length says"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "round {round}: a kept-alive answer did not leave its connection for the next"
        );
    }

    // The trailer fields of a chunked answer reach the HTTP/2 client.
    let request = http::Request::get(wharf.url("/chunked"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = h2.request(request).await.expect("head of /chunked");
    let collected = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body of /chunked");
    let trailer = collected
        .trailers()
        .and_then(|trailers| trailers.get("x-trailer"))
        .map(|value| value.as_bytes().to_vec());
    assert_eq!(trailer.as_deref(), Some(&b"t"[..]), "trailers lost");
    assert_eq!(&collected.to_bytes()[..], b"hello worldabc");

    // A body until close: relayed whole, and that connection is not reused.
    let reply = send(&h2, Method::GET, &wharf.url("/until-close"), &[], b"").await;
    assert_eq!(reply.text(), "all of this");
    let reply = send(&h2, Method::GET, &wharf.url("/length"), &[], b"").await;
    assert_eq!(reply.text(), "hello world");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // A body cut short fails the stream, not wharf; the next request
    // is served.
    let request = http::Request::get(wharf.url("/short"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = h2.request(request).await.expect("head of /short");
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert!(body.is_err(), "a truncated body arrived as complete");

    let reply = send(&h2, Method::GET, &wharf.url("/garbage"), &[], b"").await;
    assert_eq!(reply.status, 502);
    let reply = send(&h2, Method::GET, &wharf.url("/chunked"), &[], b"").await;
    assert_eq!(reply.text(), "hello worldabc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_204_reaches_clients_without_a_length_over_http1_and_http2() {
    // An app that (wrongly) sends a length with its 204, and a 304 whose
    // length names the representation (allowed).
    let (backend, _) = scripted_backend(vec![
        (
            "/gone",
            vec![b"HTTP/1.1 204 No Content\r\nContent-Length: 422\r\nX-App: 1\r\n\r\n"],
            false,
        ),
        (
            "/same",
            vec![b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"a\"\r\n\r\n"],
            false,
        ),
    ])
    .await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h1 = client();
    let h2 = h2c_client();
    for (name, client) in [("http/1.1", &h1), ("h2", &h2)] {
        for _ in 0..2 {
            let reply = send(client, Method::GET, &wharf.url("/gone"), &[], b"").await;
            assert_eq!(reply.status, 204, "{name}");
            assert_eq!(reply.header("content-length"), None, "{name}");
            assert_eq!(reply.header("x-app"), Some("1"), "{name}");
            assert!(reply.body.is_empty(), "{name}");
            let reply = send(client, Method::GET, &wharf.url("/same"), &[], b"").await;
            assert_eq!(reply.status, 304, "{name}");
            assert_eq!(reply.header("etag"), Some("\"a\""), "{name}");
        }
    }
    // A 204 to an upload (hyper's client on the way up).
    let upload = vec![b'u'; 64 * 1024];
    let reply = send(&h2, Method::PUT, &wharf.url("/gone"), &[], &upload).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("content-length"), None);
}
