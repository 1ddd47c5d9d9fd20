//! Observability as users meet it: a Prometheus scrape that promtool
//! accepts, a real Prometheus computing a request rate, the status page in
//! headless Chromium turning a killed backend red, `wharf status`, request
//! ids and trace context at the backend and in the access log, the exported
//! Grafana dashboard, and the admin token.
//!
//! promtool and prometheus come from the Debian package `prometheus`,
//! chromium and chromedriver from `chromium` and `chromium-driver`
//! (scripts/test installs them). Tests that need them fail with a message
//! naming the package when they are missing.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use support::*;

/// Fails the test with what to install when `tool` is missing.
fn require(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{tool}` is not installed: apt-get install {package} (scripts/test installs it)")
    })
}

/// Where tests keep files worth looking at afterwards (screenshots).
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/observe");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

fn free_port() -> u16 {
    dead_addr().port()
}

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proxy_site(servers: &[SocketAddr], health: bool) -> String {
    let list: Vec<String> = servers.iter().map(|a| format!("\"{a}\"")).collect();
    let health = if health {
        "  [upstream.app.health]\n  path = \"/\"\n  interval = \"300ms\"\n  timeout = \"250ms\"\n  fails = 1\n  passes = 1\n"
    } else {
        ""
    };
    format!(
        "[[site]]\nhosts = [\"example.com\"]\n  [[site.route]]\n  path = \"/api/\"\n  upstream = \"app\"\n  \
         [[site.route]]\n  path = \"/\"\n  respond = \"home\"\n\n\
         [upstream.app]\nservers = [{}]\n{health}",
        list.join(", ")
    )
}

async fn traffic(wharf: &Wharf, requests: usize) {
    let client = client();
    for i in 0..requests {
        let path = if i % 3 == 0 { "/" } else { "/api/x" };
        send(
            &client,
            Method::GET,
            &wharf.url(path),
            &[("host", "example.com")],
            b"",
        )
        .await;
    }
    // A host no site claims: counted with site="".
    send(
        &client,
        Method::GET,
        &wharf.url("/"),
        &[("host", "nobody.test")],
        b"",
    )
    .await;
}

async fn scrape(wharf: &Wharf, headers: &[(&str, &str)]) -> String {
    let reply = get(&format!("http://{}/metrics", wharf.admin), headers).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

/// Scrapes until `ready` holds (a request is recorded when its response body
/// has been sent, which can be just after the client has read it), or 5 s.
async fn scrape_until(wharf: &Wharf, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = scrape(wharf, &[]).await;
        if ready(&metrics) || Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

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
async fn request_id_and_traceparent_reach_the_backend_and_the_access_log() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(&[backend], false));
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Kept as the client sent them.
    let kept = get(
        &wharf.url("/api/kept"),
        &[
            ("host", "example.com"),
            ("x-request-id", "client-id-1"),
            ("traceparent", parent),
        ],
    )
    .await;
    let seen = kept.json();
    assert_eq!(seen["headers"]["x-request-id"], "client-id-1");
    assert_eq!(seen["headers"]["traceparent"], parent);
    assert_eq!(kept.header("x-request-id"), Some("client-id-1"));

    // Created when missing or malformed.
    let created = get(
        &wharf.url("/api/created"),
        &[("host", "example.com"), ("traceparent", "00-nonsense-01")],
    )
    .await;
    let seen = created.json();
    let id = seen["headers"]["x-request-id"]
        .as_str()
        .expect("request id")
        .to_string();
    let trace = seen["headers"]["traceparent"]
        .as_str()
        .expect("traceparent")
        .to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.header("x-request-id"), Some(id.as_str()));
    let parts: Vec<&str> = trace.split('-').collect();
    assert_eq!(parts.len(), 4, "{trace}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len(), parts[3]),
        ("00", 32, 16, "01")
    );

    let mut lines = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            lines = wharf.access_log();
            lines.len() >= 2
        })
        .await,
        "access log: {lines:?}"
    );
    let line = |path: &str| {
        lines
            .iter()
            .find(|l| l["url"]["path"] == path)
            .unwrap_or_else(|| panic!("no line for {path}: {lines:?}"))
            .clone()
    };
    let kept_line = line("/api/kept");
    assert_eq!(kept_line["http"]["request"]["id"], "client-id-1");
    assert_eq!(kept_line["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(kept_line["span"]["id"], "00f067aa0ba902b7");
    let created_line = line("/api/created");
    assert_eq!(created_line["http"]["request"]["id"], id.as_str());
    assert_eq!(created_line["trace"]["id"], parts[1]);
    assert_eq!(created_line["span"]["id"], parts[2]);
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

fn wharf_status(wharf: &Wharf, extra: &[&str]) -> std::process::Output {
    Command::new(WHARF)
        .args(["status", "-c"])
        .arg(&wharf.config_path)
        .args(["--admin", &wharf.admin.to_string()])
        .args(extra)
        .env_remove("WHARF_ADMIN_TOKEN")
        .output()
        .expect("wharf status")
}

/// The row of `wharf status` for a server.
fn status_row(output: &str, server: SocketAddr) -> String {
    output
        .lines()
        .find(|l| l.contains(&server.to_string()))
        .unwrap_or_else(|| panic!("{server} not listed:\n{output}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wharf_status_lists_every_upstream_server_with_its_health() {
    let mut one = EchoProcess::start(0);
    let two = EchoProcess::start(0);
    let wharf = Wharf::start("", &proxy_site(&[one.addr, two.addr], true));
    traffic(&wharf, 6).await;

    let output = wharf_status(&wharf, &[]);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for header in [
        "UPSTREAM",
        "SERVER",
        "STATE",
        "APP",
        "CERTIFICATE",
        "SITE",
        "example.com",
        "/api/",
    ] {
        assert!(text.contains(header), "missing {header:?}:\n{text}");
    }
    for server in [one.addr, two.addr] {
        let row = status_row(&text, server);
        assert!(row.starts_with("app ") && row.contains(" up "), "{row}");
    }

    one.kill();
    let started = Instant::now();
    let mut text = String::new();
    let turned = eventually(Duration::from_secs(5), || {
        text = String::from_utf8_lossy(&wharf_status(&wharf, &[]).stdout).to_string();
        status_row(&text, one.addr).contains(" down ")
    })
    .await;
    assert!(turned, "killed backend still not down:\n{text}");
    assert!(status_row(&text, two.addr).contains(" up "), "{text}");
    println!(
        "wharf status: killed backend down after {:?}",
        started.elapsed()
    );

    let json = wharf_status(&wharf, &["--json"]);
    let status: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(
        status["upstreams"][0]["servers"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_guards_everything_but_health_and_the_page() {
    let token = "test-token-0123456789abcdef";
    let backend = echo().await;
    let wharf = Wharf::start(
        &format!("admin_token = \"{token}\""),
        &proxy_site(&[backend], false),
    );
    let admin = |path: &str| format!("http://{}{path}", wharf.admin);
    for path in ["/metrics", "/status"] {
        let refused = get(&admin(path), &[]).await;
        assert_eq!(refused.status, 401, "{path}");
        assert!(refused
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")));
        let wrong = get(&admin(path), &[("authorization", "Bearer nope")]).await;
        assert_eq!(wrong.status, 401, "{path}");
        let bearer = format!("Bearer {token}");
        let allowed = get(&admin(path), &[("authorization", &bearer)]).await;
        assert_eq!(allowed.status, 200, "{path}");
    }
    let reload = send(&client(), Method::POST, &admin("/reload"), &[], b"").await;
    assert_eq!(reload.status, 401);
    assert_eq!(get(&admin("/healthz"), &[]).await.status, 200);
    let page = get(&admin("/"), &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<script>"));
    let html = page.text();
    for external in [
        "<script src",
        "<link",
        "@import",
        "url(",
        "src=\"http",
        "href=\"http",
    ] {
        assert!(
            !html.contains(external),
            "the page loads nothing from elsewhere: {external}"
        );
    }

    // `wharf status` takes the token from the config.
    let output = wharf_status(&wharf, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // `wharf check --print` never shows it.
    let printed = Command::new(WHARF)
        .args(["check", "--print", "-c"])
        .arg(&wharf.config_path)
        .output()
        .expect("wharf check");
    assert!(!String::from_utf8_lossy(&printed.stdout).contains(token));
}

#[test]
fn check_warns_about_a_public_admin_api_without_a_token() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"0.0.0.0:9180\"\n",
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("admin_token"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"0.0.0.0:9180\"\nadmin_token = \"0123456789abcdef0123\"\n",
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("warning"),
        "{stderr}"
    );
}

/// A non-loopback address of this machine, if it has one.
fn outward_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_admin_api_without_a_token_serves_only_loopback() {
    let Some(ip) = outward_ip() else {
        println!("skipped: this machine has no non-loopback address");
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"0.0.0.0:0\"\n[log]\nformat = \"json\"\naccess = \"off\"\n\
         [[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"ok\"\n",
    )
    .expect("write");
    let mut child = Command::new(WHARF)
        .args(["run", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wharf run");
    let stderr = child.stderr.take().expect("stderr");
    let _wharf = Guard(child);
    // Keep reading wharf's log for as long as it runs.
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut port = None;
    let mut warned = false;
    while let Ok(line) = received.recv_timeout(Duration::from_secs(20)) {
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        warned |= v["message"] == "admin API exposure";
        if v["message"] == "admin API listening" {
            port = v["addr"]
                .as_str()
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .map(|a| a.port());
        }
        if port.is_some() && warned {
            break;
        }
    }
    let port = port.expect("admin port");
    assert!(
        warned,
        "wharf run logs a warning about the exposed admin API"
    );
    let remote = get(&format!("http://{ip}:{port}/status"), &[]).await;
    assert_eq!(remote.status, 403, "{}", remote.text());
    assert!(remote.text().contains("admin_token"));
    let health = get(&format!("http://{ip}:{port}/healthz"), &[]).await;
    assert_eq!(health.status, 200);
    let local = get(&format!("http://127.0.0.1:{port}/status"), &[]).await;
    assert_eq!(local.status, 200);
}

// ---------------------------------------------------------------------
// The status page in headless Chromium, driven through chromedriver.

struct Browser {
    _driver: Guard,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let driver = require("chromedriver", "chromium-driver");
        let chromium = require("chromium", "chromium");
        let port = free_port();
        let driver = Guard(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let ready = {
            let url = format!("{base}/status");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut ready = false;
            while Instant::now() < deadline && !ready {
                tokio::time::sleep(Duration::from_millis(100)).await;
                ready = try_get_json(&url)
                    .await
                    .is_some_and(|v| v["value"]["ready"] == true);
            }
            ready
        };
        assert!(ready, "chromedriver did not start on port {port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let created = webdriver(Method::POST, &format!("{base}/session"), Some(capabilities)).await;
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            _driver: driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    async fn open(&self, url: &str) {
        webdriver(Method::POST, &self.url("/url"), Some(json!({ "url": url }))).await;
    }

    async fn script(&self, script: &str) -> Value {
        let answer = webdriver(
            Method::POST,
            &self.url("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .await;
        answer["value"].clone()
    }

    async fn screenshot(&self, path: &Path) {
        let answer = webdriver(Method::GET, &self.url("/screenshot"), None).await;
        let png = base64_decode(answer["value"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; chromedriver itself is killed by its guard.
        let url = self.url("");
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        send(&client(), Method::DELETE, &url, &[], b"").await
                    })
                    .await;
                });
            }
        })
        .join();
    }
}

async fn try_get_json(url: &str) -> Option<Value> {
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(2), client().request(request))
        .await
        .ok()?
        .ok()?;
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

async fn webdriver(method: Method, url: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [("content-type", "application/json")];
    let reply = send(&client(), method, url, &headers, body.as_bytes()).await;
    let value = reply.json();
    assert!(reply.status.is_success(), "webdriver {url}: {value}");
    value
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for digit in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(digit);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// Server rows the page shows: (address, data-state, badge colour).
const ROWS: &str =
    "return Array.from(document.querySelectorAll('#upstreams tr.server')).map(function (tr) { \
    return [tr.getAttribute('data-server'), tr.getAttribute('data-state'), \
    getComputedStyle(tr.querySelector('.badge')).backgroundColor]; });";

fn rows(value: &Value) -> Vec<(String, String, String)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let text = |i: usize| row[i].as_str().unwrap_or("").to_string();
            (text(0), text(1), text(2))
        })
        .collect()
}

/// Red-dominant: the page's "bad" colour, in either colour scheme.
fn is_red(colour: &str) -> bool {
    let numbers: Vec<u32> = colour
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    matches!(numbers.as_slice(), [r, g, b, ..] if *r > 150 && *g < 120 && *b < 120)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_chromium_shows_every_server_and_a_killed_backend_turns_red() {
    let mut one = EchoProcess::start(0);
    let two = EchoProcess::start(0);
    let wharf = Wharf::start("", &proxy_site(&[one.addr, two.addr], true));
    traffic(&wharf, 12).await;

    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", wharf.admin)).await;
    let mut shown = Vec::new();
    let mut both_up = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !both_up {
        shown = rows(&browser.script(ROWS).await);
        both_up = shown.len() == 2 && shown.iter().all(|(_, state, _)| state == "up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(both_up, "page shows {shown:?}");
    for addr in [one.addr, two.addr] {
        assert!(
            shown.iter().any(|(a, _, _)| a == &addr.to_string()),
            "{addr} missing: {shown:?}"
        );
    }
    assert!(
        shown.iter().all(|(_, _, colour)| !is_red(colour)),
        "{shown:?}"
    );
    // The charts are drawn from the page's own script.
    let charts = browser
        .script("return document.querySelectorAll('svg path.line').length;")
        .await;
    assert_eq!(charts, 3);
    let conn = browser
        .script("return document.getElementById('conn').textContent;")
        .await;
    assert_eq!(conn, "live");
    browser
        .screenshot(&artifacts().join("status-page-up.png"))
        .await;

    one.kill();
    let killed = Instant::now();
    let one_addr = one.addr.to_string();
    let mut red = false;
    while killed.elapsed() < Duration::from_secs(5) && !red {
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = rows(&browser.script(ROWS).await);
        red = shown
            .iter()
            .any(|(a, state, colour)| a == &one_addr && state == "down" && is_red(colour));
    }
    let took = killed.elapsed();
    assert!(
        red,
        "the killed backend did not turn red within 5 s: {shown:?}"
    );
    let other = shown
        .iter()
        .find(|(a, _, _)| a == &two.addr.to_string())
        .expect("second server");
    assert_eq!(other.1, "up", "{shown:?}");
    browser
        .screenshot(&artifacts().join("status-page-down.png"))
        .await;

    // With admin_token, the page takes the token from #token= and keeps it
    // out of the address bar.
    let token = "page-token-0123456789abcdef";
    let guarded = Wharf::start(
        &format!("admin_token = \"{token}\""),
        &proxy_site(&[two.addr], false),
    );
    browser
        .open(&format!("http://{}/#token={token}", guarded.admin))
        .await;
    let mut live = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        live = browser
            .script("return [document.getElementById('conn').textContent, document.querySelectorAll('#upstreams tr.server').length, location.href];")
            .await;
        if live[0] == "live" && live[1] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live[0], "live", "{live}");
    assert_eq!(live[1], 1, "{live}");
    assert!(!live[2].as_str().unwrap_or("").contains(token), "{live}");
    println!(
        "status page: killed backend red after {took:?}; screenshots in {}",
        artifacts().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_show_their_expiry_in_metrics_status_and_wharf_status() {
    let dir = tempfile::tempdir().expect("dir");
    let storage = dir.path().join("tls");
    let body = format!(
        "[tls]\nmode = \"internal\"\nstorage = \"{}\"\n\n\
         [[site]]\nhosts = [\"example.com\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"home\"\n",
        storage.display()
    );
    let wharf = Wharf::start_in(dir, "https = [\"127.0.0.1:0\"]", &body);

    let metrics = scrape(&wharf, &[]).await;
    let expiry = sample(
        &metrics,
        "wharf_certificate_expiry_timestamp_seconds{host=\"example.com\"}",
    )
    .unwrap_or_else(|| panic!("no expiry for example.com:\n{metrics}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(expiry > now, "expires in the future: {expiry} vs {now}");

    let status = get(&format!("http://{}/status", wharf.admin), &[])
        .await
        .json();
    let certificate = &status["certificates"][0];
    assert_eq!(certificate["host"], "example.com");
    assert_eq!(certificate["not_after"].as_f64(), Some(expiry));
    let days = certificate["days_left"].as_i64().expect("days_left");
    let at = status["time"].as_u64().expect("time") / 1000;
    assert_eq!(days, (expiry as i64 - at as i64).div_euclid(86_400));

    let output = wharf_status(&wharf, &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("example.com "))
        .unwrap_or_else(|| panic!("certificate not listed:\n{text}"));
    // A fresh local-CA certificate lives exactly 7 days, so the whole days
    // left may tick down between the two requests.
    assert!(
        row.contains(&format!(" {days} ")) || row.contains(&format!(" {} ", days - 1)),
        "{row}"
    );
}

/// `n` free consecutive loopback ports below the ephemeral range.
fn free_ports(n: u16) -> u16 {
    let seed = std::process::id().wrapping_mul(104_729);
    for step in 0..500u32 {
        let base = 32_100 + (seed.wrapping_add(step.wrapping_mul(16)) % 4_000) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_instances_show_up_state_and_restarts_in_metrics_and_status() {
    let port = free_ports(4);
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\n\
         [upstream.web]\napp = \"web\"\n\n\
         [app.web]\ncommand = [\"{WHARF}\", \"echo\"]\ninstances = 2\nport = {port}\nbackoff = \"200ms\"\nstop_timeout = \"2s\"\n"
    );
    let wharf = Wharf::start("", &body);
    let admin = format!("http://{}", wharf.admin);
    let mut status = Value::Null;
    let running = async {
        for _ in 0..100 {
            status = get(&format!("{admin}/status"), &[]).await.json();
            let apps = status["apps"].as_array().cloned().unwrap_or_default();
            if apps.len() == 2 && apps.iter().all(|i| i["up"] == true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
    .await;
    assert!(running, "instances not up: {status}");
    let metrics = scrape(&wharf, &[]).await;
    for instance in ["0", "1"] {
        let up = format!("wharf_app_instance_up{{app=\"web\",instance=\"{instance}\"}}");
        assert_eq!(sample(&metrics, &up), Some(1.0), "{metrics}");
        let restarts =
            format!("wharf_app_instance_restarts_total{{app=\"web\",instance=\"{instance}\"}}");
        assert_eq!(sample(&metrics, &restarts), Some(0.0), "{metrics}");
    }

    // Kill instance 0 like a crash: it is restarted and counted.
    let pid = status["apps"][0]["pid"].as_u64().expect("pid");
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    let restart = "wharf_app_instance_restarts_total{app=\"web\",instance=\"0\"}";
    let up = "wharf_app_instance_up{app=\"web\",instance=\"0\"}";
    let mut metrics = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        metrics = scrape(&wharf, &[]).await;
        if sample(&metrics, restart) == Some(1.0) && sample(&metrics, up) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sample(&metrics, restart), Some(1.0), "{metrics}");
    assert_eq!(
        sample(&metrics, up),
        Some(1.0),
        "restarted instance is up again"
    );

    let output = wharf_status(&wharf, &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("APP "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter().any(|r| r.trim_end().ends_with(" 1")),
        "one restart listed: {text}"
    );
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
        "wharf_requests_total{site=\"example.com\",route=\"\",upstream=\"\",status_class=\"4xx\"}";
    let metrics = scrape_until(&wharf, |m| {
        sample(m, aborted) == Some(1.0) && sample(m, "wharf_requests_in_flight ") == Some(0.0)
    })
    .await;
    assert_eq!(sample(&metrics, aborted), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "wharf_requests_in_flight "), Some(0.0));
}
