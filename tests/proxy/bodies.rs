//! Request and response bodies: the size limit, and uploads and
//! downloads of 200 MiB streamed through with low memory, over HTTP/1.1
//! and HTTP/2.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_max_body_size_is_refused_with_413() {
    let backend = echo().await;
    let wharf = Wharf::start("max_body_size = \"1KiB\"", &proxy_to(backend, ""));
    let client = client();
    let ok = send(&client, Method::POST, &wharf.url("/"), &[], &[b'a'; 1000]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["body_bytes"], 1000);
    let refused = send(&client, Method::POST, &wharf.url("/"), &[], &[b'a'; 4096]).await;
    assert_eq!(refused.status, 413);
}

/// Streams `total` bytes as a chunked upload without holding them.
fn upload_body(
    total: u64,
) -> impl http_body::Body<Data = bytes::Bytes, Error = std::io::Error> + Send {
    let chunk = bytes::Bytes::from(vec![b'x'; 256 * 1024]);
    let chunks = total / chunk.len() as u64;
    let stream = futures_util::stream::iter(0..chunks)
        .map(move |_| Ok::<_, std::io::Error>(http_body::Frame::data(chunk.clone())));
    http_body_util::StreamBody::new(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_upload_and_download_stream_through_with_low_memory() {
    const TOTAL: u64 = 200 * 1024 * 1024;
    let backend = echo().await;
    let wharf = Wharf::start("max_body_size = \"1GiB\"", &proxy_to(backend, ""));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let request = http::Request::post(wharf.url("/upload"))
        .body(upload_body(TOTAL))
        .expect("request");
    let response = client.request(request).await.expect("upload response");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(seen["body_bytes"], TOTAL);

    // And the other way: a 200 MiB download, read and dropped chunk by chunk.
    let response = support::client()
        .request(
            http::Request::get(wharf.url(&format!("/download?bytes={TOTAL}")))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("download response");
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Some(data) = frame.expect("frame").data_ref() {
            received += data.len() as u64;
        }
    }
    assert_eq!(received, TOTAL);

    let peak_mib = wharf.peak_rss_kib() / 1024;
    println!("wharf peak RSS after 200 MiB up and down: {peak_mib} MiB");
    assert!(
        peak_mib < 64,
        "wharf held the body in memory: peak RSS {peak_mib} MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_200_mib_download_streams_through_with_low_memory() {
    // The body is read from the upstream socket only as the HTTP/2 client
    // takes it (h1::client), never held whole.
    const TOTAL: u64 = 200 * 1024 * 1024;
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let request = http::Request::get(wharf.url(&format!("/download?bytes={TOTAL}")))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = h2c_client()
        .request(request)
        .await
        .expect("download response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Some(data) = frame.expect("frame").data_ref() {
            received += data.len() as u64;
        }
    }
    assert_eq!(received, TOTAL);
    let peak_mib = wharf.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 64,
        "wharf held the body in memory: peak RSS {peak_mib} MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_small_and_large_request_bodies_arrive_whole_with_their_length() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_to(backend, ""));
    let h2 = h2c_client();
    // Up to 8 KiB a held body goes with its head in one write (h1::client);
    // beyond, through hyper's client. Both arrive whole, with their length.
    for size in [1usize, 20, 8 * 1024, 8 * 1024 + 1, 60 * 1024] {
        let body = vec![b'x'; size];
        for method in [Method::POST, Method::PUT] {
            let reply = send(&h2, method.clone(), &wharf.url("/upload"), &[], &body).await;
            assert_eq!(reply.status, 200, "{method} of {size} bytes");
            let seen = reply.json();
            assert_eq!(seen["method"], method.as_str());
            assert_eq!(seen["body_bytes"], size as u64, "{method} of {size} bytes");
            assert_eq!(
                seen["headers"]["content-length"],
                size.to_string(),
                "{method} of {size} bytes"
            );
        }
    }
    // A GET that says its empty body's length keeps saying it; one that
    // does not, does not.
    let reply = send(
        &h2,
        Method::GET,
        &wharf.url("/len"),
        &[("content-length", "0")],
        b"",
    )
    .await;
    assert_eq!(reply.json()["headers"]["content-length"], "0");
    let reply = send(&h2, Method::GET, &wharf.url("/len"), &[], b"").await;
    assert!(reply.json()["headers"].get("content-length").is_none());
}
