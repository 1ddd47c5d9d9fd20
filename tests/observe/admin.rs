//! Who may use the admin API: `admin_token`, loopback-only without one,
//! and the `wharf check` warning.

use super::*;

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
    let deploy = send(
        &client(),
        Method::POST,
        &admin("/apps/web/deploy"),
        &[],
        b"",
    )
    .await;
    assert_eq!(deploy.status, 401);
    let bearer = format!("Bearer {token}");
    let unknown = send(
        &client(),
        Method::POST,
        &admin("/apps/nope/deploy"),
        &[("authorization", &bearer)],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(unknown.json()["status"], "failed");
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
