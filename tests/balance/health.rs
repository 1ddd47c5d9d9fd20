//! Taking servers out of the pool and letting them back: a killed backend
//! quickly, a failing one through the circuit breaker and a trial, and
//! never a lone server for an app answering 500.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_is_taken_out_quickly_and_let_back_in() {
    let mut doomed = EchoProcess::start(0);
    let steady = echo().await;
    let port = doomed.addr.port();
    let upstream = format!(
        "{}[upstream.app]\nservers = [\"{}\", \"{steady}\"]\nretries = 1\nretry_backoff = \"10ms\"\n\
         [upstream.app.health]\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfails = 2\npasses = 2\n",
        site(),
        doomed.addr
    );
    let wharf = Wharf::start("", &upstream);
    let url = wharf.url("/");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let client = client();
            let mut results: Vec<(Instant, u16, u64)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let reply = send(&client, Method::GET, &url, &[], b"").await;
                let port = if reply.status == 200 {
                    reply.json()["port"].as_u64().unwrap_or(0)
                } else {
                    0
                };
                results.push((Instant::now(), reply.status.as_u16(), port));
            }
            results
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    doomed.kill();
    let down = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("\"state\":\"Down\"")
    })
    .await;
    assert!(down, "the killed server was never marked down");
    let taken_out = killed_at.elapsed();
    println!("killed backend marked down after {taken_out:?}");
    // fails × interval, plus one timeout and scheduling slack.
    assert!(
        taken_out <= Duration::from_millis(2 * 200 + 150 + 400),
        "took {taken_out:?}"
    );
    let marked_down_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Bring it back on the same port; it must get traffic again.
    let _revived = EchoProcess::start(port);
    let back = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("\"state\":\"up\"")
    })
    .await;
    assert!(back, "the revived server was never let back in");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let results = load.await.expect("load");

    let total = results.len();
    let failed = results.iter().filter(|r| r.1 != 200).count();
    let failed_after_out = results
        .iter()
        .filter(|r| r.0 > marked_down_at && r.1 != 200)
        .count();
    let revived_traffic = results
        .iter()
        .filter(|r| r.0 > marked_down_at && r.2 == port as u64)
        .count();
    println!("{total} requests, {failed} failed ({:.3}%), {failed_after_out} failed after take-out, {revived_traffic} to the revived server", failed as f64 * 100.0 / total as f64);
    assert!(total > 500, "too few requests: {total}");
    assert!(
        failed as f64 <= total as f64 * 0.001,
        "{failed} of {total} failed"
    );
    assert_eq!(failed_after_out, 0);
    assert!(revived_traffic > 0, "the revived server got no traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_cuts_off_a_failing_server_then_a_trial_closes_it() {
    // The backend answers 503 while `failing` is set.
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    {
        let (failing, hits) = (failing.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (failing, hits) = (failing.clone(), hits.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let (failing, hits) = (failing.clone(), hits.clone());
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            let mut response = http::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from_static(b"x"),
                            ));
                            if failing.load(Ordering::SeqCst) {
                                *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
    let upstream = format!(
        "{}[upstream.app]\nservers = [\"{addr}\"]\nretries = 0\n[upstream.app.passive]\nmax_fails = 0\n\
         [upstream.app.breaker]\nfailures = 3\nopen_for = \"1s\"\n",
        site()
    );
    let wharf = Wharf::start("", &upstream);
    let client = client();
    for _ in 0..3 {
        assert_eq!(
            send(&client, Method::GET, &wharf.url("/"), &[], b"")
                .await
                .status,
            503
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Open: wharf answers without touching the backend.
    for _ in 0..5 {
        let reply = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
        assert_eq!(reply.status, 503);
        assert!(reply.header("retry-after").is_some());
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "requests reached the backend while the breaker was open"
    );
    failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Half-open: one trial succeeds and closes the breaker.
    assert_eq!(
        send(&client, Method::GET, &wharf.url("/"), &[], b"")
            .await
            .status,
        200
    );
    for _ in 0..5 {
        assert_eq!(
            send(&client, Method::GET, &wharf.url("/"), &[], b"")
                .await
                .status,
            200
        );
    }
    let logged = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("breaker_open") && wharf.logs_contain("breaker_closed")
    })
    .await;
    assert!(logged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_answering_500_does_not_take_its_lone_server_out_of_the_pool() {
    // One app instance, passive ejection at its defaults: a buggy page
    // answering 500 again and again must not turn every page into a 503.
    let backend = echo().await;
    let upstream = format!(
        "{}[upstream.app]\nservers = [\"{backend}\"]\nretries = 0\n",
        site()
    );
    let wharf = Wharf::start("", &upstream);
    let client = client();
    for _ in 0..10 {
        let reply = send(
            &client,
            Method::GET,
            &wharf.url("/bug?status=500"),
            &[],
            b"",
        )
        .await;
        assert_eq!(reply.status, 500);
    }
    let reply = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
    assert_eq!(reply.status, 200, "{:?}", reply.text());
    assert!(!wharf.logs_contain("state\":\"ejected"));
    let said = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("the pool's only server is failing")
    })
    .await;
    assert!(said, "the failures are not reported: {:?}", wharf.logs());
}
