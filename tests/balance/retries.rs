//! Retries: a POST that reached a backend is never sent again; one whose
//! connection failed before sending is.

use super::*;

/// A backend that reads a request and then drops the connection without
/// answering, counting how many requests reached it.
async fn dying_backend(hits: Arc<AtomicUsize>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                break;
            };
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_reached_a_backend_is_never_sent_again() {
    let hits = Arc::new(AtomicUsize::new(0));
    let one = dying_backend(hits.clone()).await;
    let two = dying_backend(hits.clone()).await;
    let upstream = format!(
        "{}[upstream.app]\nservers = [\"{one}\", \"{two}\"]\nretries = 2\nretry_backoff = \"10ms\"\n\
         [upstream.app.passive]\nmax_fails = 0\n",
        site()
    );
    let wharf = Wharf::start("", &upstream);
    let client = client();
    let reply = send(
        &client,
        Method::POST,
        &wharf.url("/orders"),
        &[("content-type", "application/json")],
        b"{\"qty\":1}",
    )
    .await;
    assert_eq!(reply.status, 502);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the POST was sent more than once"
    );

    // The same failure on a GET is retried on the other server.
    hits.store(0, Ordering::SeqCst);
    let reply = send(&client, Method::GET, &wharf.url("/orders"), &[], b"").await;
    assert_eq!(reply.status, 502);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 3, "a GET is retried twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_retried_when_the_connection_failed_before_sending() {
    let dead = dead_addr();
    let live = echo().await;
    let upstream = format!("{}[upstream.app]\nbalance = \"round_robin\"\nservers = [\"{dead}\", \"{live}\"]\nretries = 1\nretry_backoff = \"10ms\"\n", site());
    let wharf = Wharf::start("", &upstream);
    let client = client();
    for _ in 0..10 {
        let reply = send(&client, Method::POST, &wharf.url("/x"), &[], b"payload").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["body_bytes"], 7);
    }
}
