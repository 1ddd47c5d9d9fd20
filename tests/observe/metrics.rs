//! /metrics: promtool accepts a real scrape; requests are counted by route;
//! a reload drops removed series; a client that leaves is counted as 499.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_passes_promtool_and_counts_requests_by_route() {
    let promtool = require("promtool", "prometheus");
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(&[backend], false));
    traffic(&wharf, 30).await;
    let reload = send(
        &client(),
        Method::POST,
        &format!("http://{}/reload", wharf.admin),
        &[],
        b"",
    )
    .await;
    assert_eq!(reload.status, 200);

    let api = "wharf_requests_total{site=\"example.com\",route=\"/api/\",upstream=\"app\",status_class=\"2xx\"}";
    let home =
        "wharf_requests_total{site=\"example.com\",route=\"/\",upstream=\"\",status_class=\"2xx\"}";
    let unknown = "wharf_requests_total{site=\"\",route=\"\",upstream=\"\",status_class=\"4xx\"}";
    let metrics = scrape_until(&wharf, |m| {
        sample(m, api) == Some(20.0)
            && sample(m, home) == Some(10.0)
            && sample(m, unknown) == Some(1.0)
    })
    .await;
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write metrics");
    let output = check.wait_with_output().expect("promtool output");
    let problems = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && problems.trim().is_empty(),
        "promtool: {problems}\n{metrics}"
    );

    assert_eq!(sample(&metrics, api), Some(20.0), "{metrics}");
    assert_eq!(sample(&metrics, home), Some(10.0));
    assert_eq!(sample(&metrics, unknown), Some(1.0));
    for expected in [
        "wharf_request_duration_seconds_bucket{site=\"example.com\",route=\"/api/\",upstream=\"app\",le=\"+Inf\"} 20",
        "wharf_upstream_response_duration_seconds_count{upstream=\"app\"} 20",
        "wharf_upstream_server_up{upstream=\"app\",server=",
        "wharf_upstream_server_requests_total{upstream=\"app\",server=",
        "wharf_config_reloads_total{result=\"success\"} 1",
        "wharf_requests_in_flight ",
        "wharf_connections_total{listener=\"127.0.0.1:",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "wharf_build_info{version=",
    ] {
        assert!(metrics.contains(expected), "missing {expected:?} in:\n{metrics}");
    }
    // No label takes a value from the request: no raw path, no client IP.
    assert!(!metrics.contains("/api/x"));
    assert!(!metrics.contains("nobody.test"));

    let open = get(
        &format!("http://{}/metrics", wharf.admin),
        &[("accept", "application/openmetrics-text;version=1.0.0")],
    )
    .await;
    assert!(open
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/openmetrics-text")));
    assert!(open.text().ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_drops_the_series_of_removed_routes_and_upstreams() {
    let backend = echo().await;
    let with_old = format!(
        "{}\n[[site]]\nhosts = [\"old.test\"]\n  [[site.route]]\n  path = \"/old/\"\n  upstream = \"legacy\"\n\n\
         [upstream.legacy]\nservers = [\"{backend}\"]\n",
        proxy_site(&[backend], false)
    );
    let wharf = Wharf::start("", &with_old);
    get(&wharf.url("/old/x"), &[("host", "old.test")]).await;
    let before = scrape(&wharf, &[]).await;
    assert!(before.contains("route=\"/old/\""), "{before}");
    assert!(before.contains("upstream=\"legacy\""), "{before}");

    wharf.rewrite("", &proxy_site(&[backend], false));
    let reload = send(
        &client(),
        Method::POST,
        &format!("http://{}/reload", wharf.admin),
        &[],
        b"",
    )
    .await;
    assert_eq!(reload.status, 200, "{}", reload.text());
    let after = scrape(&wharf, &[]).await;
    assert!(!after.contains("route=\"/old/\""), "{after}");
    assert!(!after.contains("upstream=\"legacy\""), "{after}");
    assert!(!after.contains("site=\"old.test\""), "{after}");
    assert!(
        after.contains("route=\"/api/\""),
        "kept routes keep their series"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_the_answer_is_counted_as_499() {
    use tokio::io::AsyncWriteExt;
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(&[backend], false));
    let mut stream = tokio::net::TcpStream::connect(wharf.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /api/slow?sleep=3000 HTTP/1.1\r\nhost: example.com\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);

    let mut lines = Vec::new();
    let logged = eventually(Duration::from_secs(5), || {
        lines = wharf.access_log();
        lines
            .iter()
            .any(|l| l["http"]["response"]["status_code"] == 499)
    })
    .await;
    assert!(logged, "no 499 line: {lines:?}");
    let aborted =
        "wharf_requests_total{site=\"example.com\",route=\"/api/\",upstream=\"app\",status_class=\"4xx\"}";
    let metrics = scrape_until(&wharf, |m| {
        sample(m, aborted) == Some(1.0) && sample(m, "wharf_requests_in_flight ") == Some(0.0)
    })
    .await;
    assert_eq!(sample(&metrics, aborted), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "wharf_requests_in_flight "), Some(0.0));
}
