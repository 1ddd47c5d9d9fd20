//! `wharf status` and /status: upstream servers and their health,
//! certificates, app instances.

use super::*;

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
    // Per-route totals: traffic() sent 4 requests to /api/ and 2 to /.
    let routes = &status["sites"][0]["routes"];
    assert_eq!(routes[0]["path"], "/api/");
    assert_eq!(routes[0]["requests_total"], 4, "{routes}");
    assert_eq!(routes[1]["requests_total"], 2, "{routes}");
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

/// The /status entry of the server of upstream `upstream`.
fn server_status(status: &Value, upstream: &str) -> Value {
    status["upstreams"]
        .as_array()
        .and_then(|all| all.iter().find(|u| u["name"] == upstream))
        .map(|u| u["servers"][0].clone())
        .unwrap_or_else(|| panic!("no upstream {upstream}: {status}"))
}

/// The server's state, availability and health, as /status, the metrics
/// and `wharf status` show them (which must agree).
async fn shown(wharf: &Wharf, upstream: &str, addr: &str) -> (String, bool, String) {
    let status = get(&format!("http://{}/status", wharf.admin), &[])
        .await
        .json();
    let server = server_status(&status, upstream);
    let state = server["state"].as_str().unwrap_or_default().to_string();
    let available = server["available"] == true;
    let health = server["health"].as_str().unwrap_or_default().to_string();

    let metrics = scrape(wharf, &[]).await;
    let labels = format!("{{upstream=\"{upstream}\",server=\"{addr}\"}}");
    let gauge = |name: &str| sample(&metrics, &format!("{name}{labels}"));
    assert_eq!(
        gauge("wharf_upstream_server_available"),
        Some(f64::from(u8::from(available))),
        "{upstream}: {server}\n{metrics}"
    );
    assert_eq!(
        gauge("wharf_upstream_server_up"),
        Some(f64::from(u8::from(health == "up"))),
        "{upstream}: {server}\n{metrics}"
    );

    let text = String::from_utf8_lossy(&wharf_status(wharf, &[]).stdout).to_string();
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{upstream} ")) && l.contains(addr))
        .unwrap_or_else(|| panic!("{upstream} {addr} not listed:\n{text}"))
        .to_string();
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        words.get(2..4),
        Some(&[state.as_str(), health.as_str()][..]),
        "{row}"
    );
    (state, available, health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_instances_that_get_no_traffic_are_not_shown_up_or_available() {
    let port = free_ports(3);
    let (idle, crash, web) = (port, port + 1, port + 2);
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/idle/\"\n  upstream = \"idle\"\n  \
         [[site.route]]\n  path = \"/crash/\"\n  upstream = \"crash\"\n  \
         [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\n\
         [upstream.idle]\napp = \"idle\"\n[upstream.crash]\napp = \"crash\"\n[upstream.web]\napp = \"web\"\n\n\
         [app.idle]\ncommand = [\"sleep\", \"60\"]\nport = {idle}\n\n\
         [app.crash]\ncommand = [\"sh\", \"-c\", \"exit 1\"]\nport = {crash}\nbackoff = \"30s\"\n\n\
         [app.web]\ncommand = [\"{WHARF}\", \"echo\"]\nport = {web}\nbackoff = \"30s\"\nstop_timeout = \"2s\"\n"
    );
    let wharf = Wharf::start("", &body);
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(10), || {
        wharf.logs_contain("instance ready") && wharf.logs_contain("restarting after backoff")
    })
    .await;
    assert!(ready, "{:?}", wharf.logs());

    // Serving: up and available, and it answers.
    assert_eq!(get(&wharf.url("/"), &[]).await.status, 200);
    let (state, available, health) = shown(&wharf, "web", &addr(web)).await;
    assert_eq!(
        (state.as_str(), available, health.as_str()),
        ("up", true, "up")
    );

    // Started but never listening on its port (it ignores $PORT): every
    // request gets 503, so it is neither up nor available.
    assert_eq!(get(&wharf.url("/idle/"), &[]).await.status, 503);
    let (state, available, health) = shown(&wharf, "idle", &addr(idle)).await;
    assert_eq!(
        (state.as_str(), available, health.as_str()),
        ("starting", false, "unknown")
    );

    // Crashed, waiting out its backoff.
    assert_eq!(get(&wharf.url("/crash/"), &[]).await.status, 503);
    let (state, available, health) = shown(&wharf, "crash", &addr(crash)).await;
    assert_eq!(
        (state.as_str(), available, health.as_str()),
        ("down", false, "down")
    );

    // SIGKILLed: down at once, until its restart.
    let status = get(&format!("http://{}/status", wharf.admin), &[])
        .await
        .json();
    let pid = status["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|i| i["app"] == "web"))
        .and_then(|i| i["pid"].as_u64())
        .unwrap_or_else(|| panic!("no pid for web: {status}"));
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exited = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("instance exited")
    })
    .await;
    assert!(exited, "{:?}", wharf.logs());
    assert_eq!(get(&wharf.url("/"), &[]).await.status, 503);
    let (state, available, health) = shown(&wharf, "web", &addr(web)).await;
    assert_eq!(
        (state.as_str(), available, health.as_str()),
        ("down", false, "down")
    );
}
