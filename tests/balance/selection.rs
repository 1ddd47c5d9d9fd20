//! Choosing a server: weighted round robin and least connections follow
//! the weights, least connections spares a slow server, and IP hash keeps
//! clients where they were when a server is removed.

use super::*;

/// `servers` as TOML inline tables with weights.
fn weighted(servers: &[(SocketAddr, u32)]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(addr, weight)| format!("{{ addr = \"{addr}\", weight = {weight} }}"))
        .collect();
    format!("servers = [{}]", list.join(", "))
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
