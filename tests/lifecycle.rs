//! The life of a wharf process: config errors, reloads under load,
//! graceful shutdown, taken ports, the admin API and the CLI.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use support::*;

fn respond_site(body: &str) -> String {
    format!("[[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"{body}\"\n")
}

fn proxy_site(addr: std::net::SocketAddr) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{addr}\"]\n"
    )
}

#[test]
fn config_errors_are_all_printed_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"0.0.0.0:80x\"]\nshutdown_timeout = \"soon\"\n\n\
         [[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"missing\"\n\
         [site.cors]\n  origins = [\"*\"]\n  credentials = true\n",
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run wharf check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "bad.toml:2:",
        "server.listen[0]",
        "bad.toml:3:",
        "server.shutdown_timeout",
        "bad.toml:8:",
        "missing",
        "credentials",
        "fix:",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("4 errors in"), "{stderr}");
}

#[test]
fn check_accepts_a_good_config_and_print_redacts_file_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "hunter2-very-secret\n").expect("write");
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"${{file:{}}}\"\n",
            secret.display()
        ),
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "--print", "-c"])
        .arg(&path)
        .output()
        .expect("run wharf check");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("hunter2"), "secret leaked:\n{printed}");
    assert!(
        printed.contains("shutdown_timeout"),
        "defaults are shown:\n{printed}"
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_in_flight_request_finish_then_exits_0() {
    let backend = echo().await;
    let mut wharf = Wharf::start("shutdown_timeout = \"10s\"", &proxy_site(backend));
    let url = wharf.url("/slow?sleep=1500");
    let slow = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    wharf.signal("TERM");
    // New connections are refused soon after the signal.
    let addr = wharf.addr;
    let refused = eventually(Duration::from_secs(3), || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    assert!(refused, "still accepting after SIGTERM");
    let reply = slow.await.expect("slow request task");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["query"], "sleep=1500");
    let status = wharf
        .wait_exit(Duration::from_secs(10))
        .expect("wharf exited");
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() >= Duration::from_millis(1000),
        "exited before the request finished"
    );
}

/// Idle keep-alive connections (one that was answered, one that never
/// sent a byte) are closed as soon as shutdown begins: wharf exits well
/// before its shutdown timeout, and both clients read the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = echo().await;
    let mut wharf = Wharf::start("shutdown_timeout = \"20s\"", &proxy_site(backend));
    let mut answered = tokio::net::TcpStream::connect(wharf.addr)
        .await
        .expect("connect");
    answered
        .write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 4096];
    let n = answered.read(&mut head).await.expect("answer");
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );
    let mut silent = tokio::net::TcpStream::connect(wharf.addr)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    wharf.signal("TERM");
    for (name, stream) in [("answered", &mut answered), ("silent", &mut silent)] {
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the {name} idle connection was not closed");
    }
    let status = wharf
        .wait_exit(Duration::from_secs(10))
        .expect("wharf exited");
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "idle connections held shutdown for {:?}",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_bounds_the_wait_for_stuck_requests() {
    let backend = echo().await;
    let mut wharf = Wharf::start("shutdown_timeout = \"500ms\"", &proxy_site(backend));
    let url = wharf.url("/stuck?sleep=20000");
    let _stuck = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    wharf.signal("TERM");
    let status = wharf
        .wait_exit(Duration::from_secs(10))
        .expect("wharf exited");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_taken_port_exits_1_naming_the_address_and_the_holder() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = [\"{addr}\"]\nadmin = \"off\"\n"),
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["run", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run wharf");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("address already in use") || stderr.contains("Address already in use"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "holder not named: {stderr}"
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keepalive_connections_are_closed_after_idle_timeout() {
    let wharf = Wharf::start("idle_timeout = \"300ms\"", &respond_site("hi"));
    let started = Instant::now();
    let answer = raw(wharf.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "idle connection was not closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let wharf = Wharf::start("header_timeout = \"300ms\"", &respond_site("hi"));
    let started = Instant::now();
    let answer = raw(wharf.addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert!(!answer.contains("200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "slow client was not cut off"
    );
}

#[test]
fn without_a_config_file_wharf_runs_the_demo() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_ports(1);
    let mut child = Command::new(WHARF)
        .arg("run")
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(async {
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let welcome = get(&format!("{url}/"), &[]).await;
        // The echo instances are supervised processes; they answer once ready.
        let mut ports = std::collections::BTreeSet::new();
        let mut echoed = None;
        for _ in 0..200 {
            let reply = get(&format!("{url}/echo/hi"), &[]).await;
            if reply.status == 200 {
                ports.insert(reply.json()["port"].as_u64());
                echoed = Some(reply);
                if ports.len() == 2 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let echoed = (echoed.expect("the demo echo never answered"), ports);
        (welcome, echoed)
    });
    // The README's next commands, in the same directory: they find the
    // demo's admin API without a config file.
    let admin_commands: Vec<_> = [&["status"][..], &["reload"], &["deploy", "demo_echo"]]
        .iter()
        .map(|args| {
            let output = Command::new(WHARF)
                .args(*args)
                .current_dir(dir.path())
                .env_remove("WHARF_ADMIN_TOKEN")
                .stdin(Stdio::null())
                .output()
                .expect("run wharf");
            (args.join(" "), output)
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    for (command, output) in &admin_commands {
        assert!(
            output.status.success(),
            "wharf {command} against the demo: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let status = String::from_utf8_lossy(&admin_commands[0].1.stdout);
    assert!(status.contains("<embedded demo>"), "{status}");
    assert!(status.contains("demo_echo"), "{status}");
    let (welcome, (echoed, ports)) = result;
    assert_eq!(welcome.status, 200);
    assert!(welcome.text().contains("wharf is running"));
    assert_eq!(echoed.json()["path"], "/echo/hi");
    assert_eq!(
        ports.len(),
        2,
        "both supervised echo instances answer: {ports:?}"
    );
}

#[test]
fn admin_commands_name_a_missing_config_file_plainly() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [&["status"][..], &["reload"], &["deploy", "web"]] {
        let output = Command::new(WHARF)
            .args(args)
            .args(["-c", "missing.toml"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run wharf");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("missing.toml does not exist"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("broken"), "{args:?}: {stderr}");
    }
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

#[test]
fn the_pretty_log_has_no_colour_codes_when_it_does_not_go_to_a_terminal() {
    // journald, a file or a pipe would keep the escape codes as they are.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"off\"\n\n[log]\nformat = \"pretty\"\n\n{}",
            respond_site("hi")
        ),
    )
    .expect("write");
    let mut child = Command::new(WHARF)
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wharf");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        let listening = line.contains("listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("listening")),
        "wharf never said it listens: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a piped log: {seen:?}"
    );
}
