//! `wharf export`: a real Prometheus configured by `wharf export prometheus`
//! computes a request rate; the Grafana dashboard queries only metrics that
//! exist.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_wharf_and_reports_a_request_rate() {
    let prometheus = require("prometheus", "prometheus");
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(&[backend], false));

    // The scrape config is the one `wharf export prometheus` prints.
    let exported = Command::new(WHARF)
        .args(["export", "prometheus", "-c"])
        .arg(&wharf.config_path)
        .args([
            "--target",
            &wharf.admin.to_string(),
            "--scrape-interval",
            "1s",
        ])
        .output()
        .expect("wharf export prometheus");
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let config = wharf.dir.path().join("prometheus.yml");
    std::fs::write(&config, &exported.stdout).expect("write prometheus.yml");
    let checked = Command::new(require("promtool", "prometheus"))
        .args(["check", "config"])
        .arg(&config)
        .output()
        .expect("promtool check config");
    assert!(
        checked.status.success(),
        "promtool rejects the exported config: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let port = free_port();
    let _prometheus = Guard(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                wharf.dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    let load = {
        let url = wharf.url("/api/load");
        tokio::spawn(async move {
            let client = client();
            loop {
                send(&client, Method::GET, &url, &[("host", "example.com")], b"").await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let query = "sum(rate(wharf_requests_total{job=\"wharf\",route=\"/api/\"}[10s]))";
    let url = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}",
        query
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    );
    let started = Instant::now();
    let mut last = Value::Null;
    let mut rate = 0.0;
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(5), async {
            let request = http::Request::get(&url)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .expect("request");
            client().request(request).await
        })
        .await
        else {
            continue;
        };
        use http_body_util::BodyExt;
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        last = serde_json::from_slice(&body).unwrap_or(Value::Null);
        rate = last["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if rate > 0.0 {
            break;
        }
    }
    load.abort();
    assert!(
        rate > 0.0,
        "Prometheus never saw traffic; last answer: {last}"
    );
    println!(
        "prometheus: request rate {rate:.1}/s after {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_grafana_dashboard_parses_and_uses_only_metrics_wharf_exports() {
    let output = Command::new(WHARF)
        .args(["export", "grafana"])
        .output()
        .expect("wharf export grafana");
    assert!(output.status.success());
    let dashboard: Value = serde_json::from_slice(&output.stdout).expect("dashboard is JSON");
    assert_eq!(dashboard["title"], "wharf");

    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 20, "{exprs:?}");
    let referenced: BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| {
            e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.starts_with("wharf_") || w.starts_with("process_"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();

    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(&[backend], false));
    traffic(&wharf, 6).await;
    let metrics = scrape(&wharf, &[]).await;
    let mut families = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            families.insert(name.to_string());
            if kind == "histogram" {
                histograms.insert(name.to_string());
            }
        }
    }
    let exists = |name: &str| {
        families.contains(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| histograms.contains(base))
            })
    };
    let missing: Vec<&String> = referenced.iter().filter(|n| !exists(n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics wharf does not export: {missing:?}"
    );
    println!(
        "grafana: {} queries over {} metrics, all exported",
        exprs.len(),
        referenced.len()
    );
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}
