//! Unit tests of the echo backend against a real listener: the JSON
//! report, h2c, the `status`, `bytes` and `sleep` parameters, WebSocket
//! echo, and the filler body's bounded chunks.

use super::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper_util::client::legacy::Client;

async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener));
    addr
}

async fn json_of(response: Response<hyper::body::Incoming>) -> Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn reports_the_request_as_json() {
    let addr = start().await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(format!("http://{addr}/some/path?a=1&b=2"))
        .header("x-one", "1")
        .header("x-many", "first")
        .header("x-many", "second")
        .body(Full::new(Bytes::from_static(b"hello body")))
        .expect("request");
    let response = client.request(req).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let report = json_of(response).await;
    assert_eq!(report["method"], "POST");
    assert_eq!(report["path"], "/some/path");
    assert_eq!(report["query"], "a=1&b=2");
    assert_eq!(report["headers"]["x-one"], "1");
    assert_eq!(report["headers"]["x-many"], json!(["first", "second"]));
    assert_eq!(report["headers"]["host"], addr.to_string());
    assert_eq!(report["port"], addr.port());
    assert_eq!(report["body_bytes"], 10);
    let peer: SocketAddr = report["peer"]
        .as_str()
        .expect("peer")
        .parse()
        .expect("addr");
    assert!(peer.ip().is_loopback());
}

#[tokio::test]
async fn h2c_and_status_parameter() {
    let addr = start().await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let uri = format!("http://{addr}/x?status=503").parse().expect("uri");
    let response = client.get(uri).await.expect("response");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report = json_of(response).await;
    assert_eq!(report["query"], "status=503");
    assert_eq!(report["body_bytes"], 0);

    let uri = format!("http://{addr}/x?status=abc").parse().expect("uri");
    let response = client.get(uri).await.expect("response");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // 204 and 304 come without a body (the server may say length 0).
    for status in [204, 304] {
        let uri = format!("http://{addr}/x?status={status}")
            .parse()
            .expect("uri");
        let response = client.get(uri).await.expect("response");
        assert_eq!(response.status().as_u16(), status);
        let length = response.headers().get(header::CONTENT_LENGTH);
        assert!(length.is_none_or(|l| l == "0"), "{length:?}");
        let body = response.into_body().collect().await.expect("body");
        assert!(body.to_bytes().is_empty());
    }
}

#[tokio::test]
async fn bytes_mode_streams_the_requested_length() {
    let addr = start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let length = 1_000_003u64;
    let uri = format!("http://{addr}/download?bytes={length}")
        .parse()
        .expect("uri");
    let response = client.get(uri).await.expect("response");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        length.to_string().as_str()
    );
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.expect("frame").data_ref() {
            received += data.len() as u64;
        }
    }
    assert_eq!(received, length);
}

#[test]
fn filler_never_allocates_more_than_a_chunk() {
    let mut body = Filler { remaining: 1 << 30 };
    assert_eq!(http_body::Body::size_hint(&body).exact(), Some(1 << 30));
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut total = 0u64;
    while let Poll::Ready(Some(Ok(frame))) =
        http_body::Body::poll_frame(Pin::new(&mut body), &mut cx)
    {
        let data = frame.into_data().expect("data");
        assert!(data.len() <= CHUNK.len());
        total += data.len() as u64;
    }
    assert_eq!(total, 1 << 30);
}

#[tokio::test]
async fn sleep_delays_the_answer() {
    let addr = start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let started = tokio::time::Instant::now();
    let uri = format!("http://{addr}/slow?sleep=200")
        .parse()
        .expect("uri");
    let response = client.get(uri).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn websocket_messages_are_echoed() {
    use tokio_tungstenite::tungstenite::Message as Ws;
    let addr = start().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/any/path"))
        .await
        .expect("connect");
    socket.send(Ws::text("hello")).await.expect("send");
    socket
        .send(Ws::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    let first = socket.next().await.expect("message").expect("ok");
    assert_eq!(first, Ws::text("hello"));
    let second = socket.next().await.expect("message").expect("ok");
    assert_eq!(second, Ws::binary(vec![1u8, 2, 3]));
}

#[test]
fn options_parse() {
    let options = Options::parse(Some("sleep=5&status=404&bytes=9&other")).expect("ok");
    assert_eq!(options.sleep, Some(Duration::from_millis(5)));
    assert_eq!(options.status, Some(StatusCode::NOT_FOUND));
    assert_eq!(options.bytes, Some(9));
    assert!(Options::parse(Some("status=101")).is_err());
    assert!(Options::parse(Some("bytes=-1")).is_err());
    assert_eq!(Options::parse(None), Ok(Options::default()));
}
