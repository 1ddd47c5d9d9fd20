//! Load balancing across real backends on loopback: weights, least
//! connections, IP hash, health checks, failover, retries and backups.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn site() -> &'static str {
    "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n"
}

/// `servers` as TOML inline tables with weights.
fn weighted(servers: &[(SocketAddr, u32)]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(addr, weight)| format!("{{ addr = \"{addr}\", weight = {weight} }}"))
        .collect();
    format!("servers = [{}]", list.join(", "))
}

/// Sends `total` GETs from `workers` concurrent keep-alive clients and
/// counts which backend port answered each.
async fn spread(
    url: &str,
    total: usize,
    workers: usize,
    headers: Vec<(String, String)>,
) -> (HashMap<u16, usize>, usize) {
    let counts = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (url, counts, failures, headers) = (
            url.to_string(),
            counts.clone(),
            failures.clone(),
            headers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = client();
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            for _ in 0..total / workers {
                let reply = send(&client, Method::GET, &url, &headers, b"").await;
                if reply.status == 200 {
                    let port = reply.json()["port"].as_u64().unwrap_or(0) as u16;
                    *counts.lock().expect("counts").entry(port).or_insert(0) += 1;
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    let counts = counts.lock().expect("counts").clone();
    (counts, failures.load(Ordering::Relaxed))
}

fn assert_shares(counts: &HashMap<u16, usize>, expected: &[(SocketAddr, f64)], total: usize) {
    for (addr, share) in expected {
        let got = *counts.get(&addr.port()).unwrap_or(&0) as f64 / total as f64;
        println!("{addr}: expected {share:.3}, got {got:.4}");
        assert!(
            (got - share).abs() <= 0.03,
            "{addr}: share {got:.4}, expected {share:.3} ±0.03; counts {counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_and_least_conn_follow_the_weights() {
    let a = echo().await;
    let b = echo().await;
    let c = echo().await;
    for balance in ["round_robin", "least_conn"] {
        let upstream = format!(
            "[upstream.app]\nbalance = \"{balance}\"\n{}\n",
            weighted(&[(a, 5), (b, 3), (c, 2)])
        );
        let wharf = Wharf::start("", &format!("{}{upstream}", site()));
        // least_conn follows the weights among equally loaded servers (its
        // tie-break is smooth weighted round robin); with one client every
        // pick is such a tie. Under concurrency it prefers idle servers,
        // which `least_conn_sends_fewer_requests_to_a_slow_server` covers.
        let workers = if balance == "least_conn" { 1 } else { 4 };
        let (counts, failures) = spread(&wharf.url("/"), 10_000, workers, Vec::new()).await;
        assert_eq!(failures, 0);
        println!("{balance} with {workers} concurrent clients:");
        assert_shares(&counts, &[(a, 0.5), (b, 0.3), (c, 0.2)], 10_000);
    }
}

/// A backend that answers `{"port": N}` after `delay`.
async fn delayed_backend(delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    tokio::time::sleep(delay).await;
                    let body = format!("{{\"port\": {}}}", addr.port());
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(body)),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_sends_fewer_requests_to_a_slow_server() {
    let fast = delayed_backend(Duration::from_millis(1)).await;
    let slow = delayed_backend(Duration::from_millis(60)).await;
    let upstream =
        format!("[upstream.app]\nbalance = \"least_conn\"\nservers = [\"{fast}\", \"{slow}\"]\n");
    let wharf = Wharf::start("", &format!("{}{upstream}", site()));
    let (counts, failures) = spread(&wharf.url("/"), 800, 8, Vec::new()).await;
    assert_eq!(failures, 0);
    let to_fast = counts.get(&fast.port()).copied().unwrap_or(0);
    let to_slow = counts.get(&slow.port()).copied().unwrap_or(0);
    println!("least_conn: fast {to_fast}, slow {to_slow}");
    assert!(
        to_slow * 4 < to_fast,
        "slow server got {to_slow}, fast {to_fast}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_hash_keeps_clients_and_removing_one_of_four_moves_few() {
    let servers = [echo().await, echo().await, echo().await, echo().await];
    let upstream = |list: &[SocketAddr]| {
        let list: Vec<String> = list.iter().map(|a| format!("\"{a}\"")).collect();
        format!(
            "{}[upstream.app]\nbalance = \"ip_hash\"\nservers = [{}]\n",
            site(),
            list.join(", ")
        )
    };
    let trusted = "trusted_proxies = [\"127.0.0.0/8\"]";
    let wharf = Wharf::start(trusted, &upstream(&servers));
    let client = client();
    let ip = |i: usize| format!("198.{}.{}.{}", 18 + i / 65536 % 2, i / 256 % 256, i % 256);
    let mut before = HashMap::new();
    for i in 0..1000 {
        let reply = send(
            &client,
            Method::GET,
            &wharf.url("/"),
            &[("x-forwarded-for", &ip(i))],
            b"",
        )
        .await;
        before.insert(i, reply.json()["port"].as_u64().expect("port"));
    }
    // The same client lands on the same server every time.
    for i in (0..1000).step_by(50) {
        for _ in 0..3 {
            let reply = send(
                &client,
                Method::GET,
                &wharf.url("/"),
                &[("x-forwarded-for", &ip(i))],
                b"",
            )
            .await;
            assert_eq!(reply.json()["port"].as_u64(), before.get(&i).copied());
        }
    }
    let removed = servers[3].port() as u64;
    wharf.rewrite(trusted, &upstream(&servers[..3]));
    let reply = send(
        &client,
        Method::POST,
        &format!("http://{}/reload", wharf.admin),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut moved = 0;
    for i in 0..1000 {
        let reply = send(
            &client,
            Method::GET,
            &wharf.url("/"),
            &[("x-forwarded-for", &ip(i))],
            b"",
        )
        .await;
        let now = reply.json()["port"].as_u64().expect("port");
        if Some(&now) != before.get(&i) {
            moved += 1;
            assert_eq!(
                before.get(&i),
                Some(&removed),
                "client {i} moved although its server stayed"
            );
        }
    }
    println!("ip_hash: {moved} of 1000 clients moved after removing 1 of 4 servers");
    assert!(moved <= 300, "{moved} clients moved");
    assert!(moved > 0);
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_serves_only_when_every_primary_is_down() {
    let primary = echo().await;
    let backup = echo().await;
    let config = |primary: SocketAddr| {
        format!(
            "{}[upstream.app]\nservers = [\"{primary}\", {{ addr = \"{backup}\", backup = true }}]\nretries = 0\n\
             [upstream.app.passive]\nmax_fails = 1\neject_for = \"30s\"\nmax_ejected_percent = 100\n",
            site()
        )
    };
    let wharf = Wharf::start("", &config(primary));
    let (counts, failures) = spread(&wharf.url("/"), 200, 2, Vec::new()).await;
    assert_eq!(failures, 0);
    assert_eq!(
        counts.get(&backup.port()),
        None,
        "backup used while the primary is up: {counts:?}"
    );

    // With the primary gone, the first failure ejects it and the backup takes over.
    let dead = dead_addr();
    wharf.rewrite("", &config(dead));
    wharf.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = client();
    let first = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
    assert_eq!(first.status, 502);
    for _ in 0..20 {
        let reply = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["port"].as_u64(), Some(backup.port() as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_down_gives_503_with_retry_after() {
    let upstream = format!(
        "{}[upstream.app]\nservers = [\"{}\"]\nretries = 0\n[upstream.app.passive]\nmax_fails = 1\neject_for = \"5s\"\nmax_ejected_percent = 100\n",
        site(),
        dead_addr()
    );
    let wharf = Wharf::start("", &upstream);
    let client = client();
    assert_eq!(
        send(&client, Method::GET, &wharf.url("/"), &[], b"")
            .await
            .status,
        502
    );
    let reply = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
    assert_eq!(reply.status, 503);
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    let logged = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("no upstream server is available")
    })
    .await;
    assert!(logged);
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
