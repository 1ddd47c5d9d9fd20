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
