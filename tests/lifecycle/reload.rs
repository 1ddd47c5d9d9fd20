//! Reloads: none loses a request under load, a bad one keeps the old
//! config serving and says why, listeners come and go, and a SIGHUP right
//! after start reloads instead of killing wharf.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_during_2000_requests_lose_none() {
    let a = echo().await;
    let b = echo().await;
    let wharf = Wharf::start("", &proxy_site(a));
    let url = wharf.url("/load");
    let admin = format!("http://{}/reload", wharf.admin);

    let mut workers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let client = client();
            let mut failures = Vec::new();
            for _ in 0..500 {
                let reply = send(&client, Method::GET, &url, &[], b"").await;
                if reply.status != 200 {
                    failures.push(reply.status);
                }
            }
            failures
        }));
    }
    let admin_client = client();
    for round in 0..20 {
        let next = if round % 2 == 0 { b } else { a };
        wharf.rewrite("", &proxy_site(next));
        if round % 2 == 0 {
            let reply = send(&admin_client, Method::POST, &admin, &[], b"").await;
            assert_eq!(reply.status, 200, "reload {round}: {}", reply.text());
        } else {
            wharf.signal("HUP");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.expect("worker"));
    }
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let reloads = wharf
        .logs
        .lock()
        .expect("logs")
        .iter()
        .filter(|l| l.contains("config reloaded"))
        .count();
    assert!(reloads >= 15, "only {reloads} reloads were logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_keeps_the_old_config_serving_and_says_why() {
    let wharf = Wharf::start("", &respond_site("old"));
    assert_eq!(get(&wharf.url("/"), &[]).await.text(), "old");
    wharf.rewrite(
        "",
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"nope\"\n",
    );
    let reply = send(
        &client(),
        Method::POST,
        &format!("http://{}/reload", wharf.admin),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 422);
    let error = reply.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("wharf.toml:14:14: site[0].route[0].upstream"),
        "{error}"
    );
    assert_eq!(get(&wharf.url("/"), &[]).await.text(), "old");

    // The CLI reports the same through the admin API.
    let output = Command::new(WHARF)
        .args(["reload", "--admin", &wharf.admin.to_string()])
        .output()
        .expect("wharf reload");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("previous config keeps serving"));

    wharf.rewrite("", &respond_site("new"));
    let output = Command::new(WHARF)
        .args(["reload", "--admin", &wharf.admin.to_string()])
        .output()
        .expect("wharf reload");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(get(&wharf.url("/"), &[]).await.text(), "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_listeners() {
    let wharf = Wharf::start("", &respond_site("hi"));
    // The port was free when picked, but another test may take it before
    // wharf binds it: then the reload is rejected and another port is tried.
    let mut extra = None;
    for attempt in 1..=5 {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_ports(1)));
        // `listen` would appear twice in [server]; the harness line comes
        // first, so it is taken out.
        wharf.rewrite(
            &format!("listen = [\"127.0.0.1:0\", \"{addr}\"]"),
            &respond_site("hi"),
        );
        let text = std::fs::read_to_string(&wharf.config_path).expect("read");
        let text = text.replacen("listen = [\"127.0.0.1:0\"]\n", "", 1);
        std::fs::write(&wharf.config_path, text).expect("write");
        wharf.signal("HUP");
        let outcome = eventually(Duration::from_secs(10), || {
            wharf.logs_count("config reloaded") + wharf.logs_count("config reload rejected")
                >= attempt
        })
        .await;
        assert!(outcome, "no reload outcome logged: {:?}", wharf.logs());
        if wharf.logs_count("config reloaded") == 1 {
            extra = Some(addr);
            break;
        }
    }
    let extra = extra.unwrap_or_else(|| panic!("every reload was rejected: {:?}", wharf.logs()));
    let url = format!("http://{extra}/");
    let reply = send(&client(), Method::GET, &url, &[], b"").await;
    assert_eq!(reply.status, 200, "new listener {extra}");
    assert_eq!(reply.text(), "hi");

    wharf.rewrite("", &respond_site("hi"));
    wharf.signal("HUP");
    let closed = eventually(Duration::from_secs(5), || {
        std::net::TcpStream::connect(extra).is_err()
    })
    .await;
    assert!(closed, "removed listener {extra} still accepts");
    assert_eq!(get(&wharf.url("/"), &[]).await.status, 200);
}

#[test]
fn a_sighup_sent_as_soon_as_wharf_listens_reloads_instead_of_killing_it() {
    // A deploy script that reloads the moment the port answers must not
    // meet the default SIGHUP action (exit). Several starts, to meet the
    // window right after the first listener if there is one.
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("wharf.toml");
        std::fs::write(&config, config_text(dir.path(), "", &respond_site("hi"))).expect("write");
        let mut child = Command::new(WHARF)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wharf");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let mut seen = Vec::new();
        let mut signalled = false;
        for line in lines.by_ref().map_while(Result::ok) {
            let first_listener = !signalled && line.contains("\"listening\"");
            seen.push(line);
            if first_listener {
                // Straight from this thread, not through kill(1): the
                // signal must arrive while wharf is still starting.
                let pid = libc::pid_t::try_from(child.id()).expect("pid");
                // SAFETY: kill(2) on the pid of a child this test owns and
                // has not yet waited for.
                let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
                assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
                signalled = true;
            }
            if seen.last().is_some_and(|l| l.contains("config reload")) {
                break;
            }
        }
        let alive = child.try_wait().expect("try_wait").is_none();
        let _ = child.kill();
        let _ = child.wait();
        assert!(signalled, "round {round}: wharf never listened: {seen:?}");
        assert!(alive, "round {round}: SIGHUP killed wharf: {seen:?}");
        assert!(
            seen.iter().any(|l| l.contains("config reloaded")),
            "round {round}: {seen:?}"
        );
    }
}
