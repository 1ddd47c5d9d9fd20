//! What a running wharf reports: health and readiness on the admin API,
//! and one ECS access log line per request.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reports_health_and_readiness() {
    let wharf = Wharf::start("", &respond_site("hi"));
    let health = get(&format!("http://{}/healthz", wharf.admin), &[]).await;
    assert_eq!(health.status, 200);
    // Ready follows the listeners' log lines by a moment (the last steps
    // of start-up); it must come, and say so.
    let url = format!("http://{}/readyz", wharf.admin);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ready = get(&url, &[]).await;
    while ready.status != 200 && Instant::now() < deadline {
        assert_eq!(ready.json()["status"], "not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = get(&url, &[]).await;
    }
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_has_one_ecs_line_per_request() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(backend));
    get(
        &wharf.url("/logged?a=1"),
        &[
            ("user-agent", "wharf-test/1"),
            ("referer", "https://shop.example/cart"),
        ],
    )
    .await;
    // The same over HTTP/2 (hyper's server, the general path).
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    send(
        &h2,
        Method::GET,
        &wharf.url("/logged-h2"),
        &[("referer", "https://shop.example/h2")],
        b"",
    )
    .await;
    let found = eventually(Duration::from_secs(5), || {
        wharf
            .access_log()
            .iter()
            .any(|l| l["url"]["path"] == "/logged")
    })
    .await;
    assert!(found);
    let line = wharf
        .access_log()
        .into_iter()
        .find(|l| l["url"]["path"] == "/logged")
        .expect("line");
    assert!(line["@timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(line["http"]["request"]["method"], "GET");
    assert_eq!(line["http"]["response"]["status_code"], 200);
    assert_eq!(line["url"]["query"], "a=1");
    assert_eq!(line["client"]["ip"], "127.0.0.1");
    assert_eq!(line["user_agent"]["original"], "wharf-test/1");
    assert_eq!(
        line["http"]["request"]["referrer"],
        "https://shop.example/cart"
    );
    assert_eq!(line["upstream"]["address"], backend.to_string());
    assert!(line["event"]["duration"].as_u64().is_some_and(|d| d > 0));
    assert!(line["http"]["response"]["body"]["bytes"]
        .as_u64()
        .is_some_and(|b| b > 0));
    let h2_line = eventually(Duration::from_secs(5), || {
        wharf.access_log().iter().any(|l| {
            l["url"]["path"] == "/logged-h2"
                && l["http"]["version"] == "2"
                && l["http"]["request"]["referrer"] == "https://shop.example/h2"
        })
    })
    .await;
    assert!(h2_line, "{:?}", wharf.access_log());
}
