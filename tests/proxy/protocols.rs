//! Protocols other than a plain HTTP/1.1 exchange: a WebSocket echoed
//! through wharf, and an HTTP/2 cleartext client in front of an HTTP/1
//! backend.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_works_through_wharf() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let (mut socket, response) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws", wharf.addr))
            .await
            .expect("websocket handshake through wharf");
    assert_eq!(response.status(), 101);
    for text in ["hello", "through", "wharf"] {
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("echo in time")
            .expect("a message")
            .expect("not an error");
        assert_eq!(echoed.into_text().expect("text").as_str(), text);
    }
    socket.close(None).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_is_proxied_to_http1_backend() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let reply = send(&h2c_client(), Method::GET, &wharf.url("/h2"), &[], b"").await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["path"], "/h2");
    assert_eq!(seen["headers"]["host"], wharf.addr.to_string());
    // A POST without a body is sent with its length, which some servers
    // insist on.
    let reply = send(&h2c_client(), Method::POST, &wharf.url("/empty"), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["content-length"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_authority_that_is_no_host_is_refused_not_forwarded() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h2 = h2c_client();
    let url = format!("http://evil@{}/who", wharf.addr);
    let reply = send(&h2, Method::GET, &url, &[], b"").await;
    assert_eq!(reply.status, 400);
    assert!(reply.header("connection").is_none());
    // The same connection goes on serving good requests.
    let reply = send(&h2, Method::GET, &wharf.url("/who"), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["host"], wharf.addr.to_string());
}
