//! A client that writes its whole request body before it reads (as
//! Python's `requests`, `http.client` and most scripts do) still gets
//! the answer wharf gave before the body was read (a 413, an upstream's
//! early answer). Closed at once with the body still arriving, the
//! connection would be reset by the kernel: such a client sees "connection
//! reset" and never the answer. wharf reads and drops the rest first, as
//! nginx's `lingering_close` does.

use super::*;

/// Large enough to outlast the sockets' buffers on loopback, so that the
/// answer is given while the client is still writing.
const BODY: usize = 16 << 20;

/// Writes a `POST` with a `BODY`-byte body in full (with a
/// `Content-Length`, or chunked), then reads the answer to its end. `Err`
/// says which of the two failed.
async fn upload_then_read(
    addr: std::net::SocketAddr,
    path: &str,
    chunked: bool,
) -> Result<Vec<u8>, String> {
    let bound = Duration::from_secs(20);
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let framing = match chunked {
        true => "Transfer-Encoding: chunked".to_string(),
        false => format!("Content-Length: {BODY}"),
    };
    let head = format!("POST {path} HTTP/1.1\r\nHost: app.test\r\n{framing}\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("writing the head: {e}"))?;
    let mut piece = vec![b'u'; 64 * 1024];
    if chunked {
        // 6 + 0xfff8 + 2 bytes: one chunk per piece.
        let size = b"fff8\r\n";
        piece[..size.len()].copy_from_slice(size);
        let end = piece.len();
        piece[end - 2..].copy_from_slice(b"\r\n");
    }
    let mut sent = 0;
    while sent < BODY {
        match tokio::time::timeout(bound, stream.write_all(&piece)).await {
            Ok(Ok(())) => sent += piece.len(),
            Ok(Err(e)) => return Err(format!("writing the body, after {sent} bytes: {e}")),
            Err(_) => return Err(format!("writing the body stalled after {sent} bytes")),
        }
    }
    if chunked {
        stream
            .write_all(b"0\r\n\r\n")
            .await
            .map_err(|e| format!("writing the last chunk: {e}"))?;
    }
    let mut answer = Vec::new();
    match tokio::time::timeout(bound, stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => Ok(answer),
        Ok(Err(e)) => Err(format!(
            "reading the answer, after {:?}: {e}",
            String::from_utf8_lossy(&answer)
        )),
        Err(_) => Err("the answer did not end".to_string()),
    }
}

fn expect_413(outcome: Result<Vec<u8>, String>, what: &str) {
    let answer = outcome.unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "{what}: the answer was {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_writing_its_whole_body_first_gets_the_413_for_it() {
    let backend = echo().await;
    let wharf = Wharf::start("max_body_size = \"1KiB\"", &proxy_to(backend, ""));
    for round in 0..3 {
        for chunked in [false, true] {
            expect_413(
                upload_then_read(wharf.addr, "/upload", chunked).await,
                &format!("upload {round} over max_body_size (chunked: {chunked})"),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_writing_its_whole_body_first_gets_the_upstreams_early_answer() {
    // The upstream answers as soon as it has the head, and closes.
    let (backend, _) = scripted_backend(vec![(
        "/early",
        vec![&b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!"[..]],
        true,
    )])
    .await;
    let wharf = Wharf::start("max_body_size = \"1GiB\"", &proxy_to(backend, ""));
    for round in 0..3 {
        // With a length, the fast path relays it; chunked, hyper does.
        for chunked in [false, true] {
            let outcome = upload_then_read(wharf.addr, "/early", chunked).await;
            if let Ok(answer) = &outcome {
                let text = String::from_utf8_lossy(answer);
                assert!(text.ends_with("too big!"), "round {round}: {text:?}");
            }
            expect_413(
                outcome,
                &format!("early answer {round} (chunked: {chunked})"),
            );
        }
    }
}

/// The `wharf_connections_lingering` gauge: 1 while a refused upload's
/// client still holds its connection open, 0 once it has gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lingering_connection_is_counted_in_the_metrics_until_the_client_goes() {
    let backend = echo().await;
    let wharf = Wharf::start("max_body_size = \"1KiB\"", &proxy_to(backend, ""));
    let gauge = |metrics: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("wharf_connections_lingering "))
            .map(str::to_string)
    };
    let scrape_until = |want: &'static str| {
        let url = format!("http://{}/metrics", wharf.admin);
        async move {
            let mut last = String::new();
            for _ in 0..100 {
                last = get(&url, &[]).await.text();
                if gauge(&last).as_deref() == Some(want) {
                    return Ok(last);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(last)
        }
    };
    let before = scrape_until("0").await;
    assert!(before.is_ok(), "no lingering gauge at 0: {before:?}");

    let mut stream = tokio::net::TcpStream::connect(wharf.addr)
        .await
        .expect("connect");
    let head = format!("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: {BODY}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&[b'u'; 64 * 1024])
        .await
        .expect("the start of the body");
    // wharf answers, shuts its side and lingers: the answer ends.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the answer ended")
        .expect("the answer");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");

    let during = scrape_until("1").await;
    assert!(during.is_ok(), "not counted while lingering: {during:?}");

    drop(stream);
    let after = scrape_until("0").await;
    assert!(
        after.is_ok(),
        "still counted after the client left: {after:?}"
    );
}
