//! Starting instances: each gets its port and environment, an app that
//! never listens on $PORT is warned about once, and a program that is
//! missing or cannot run is named with the fix and retried.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_get_their_port_and_environment() {
    let port = free_ports(4);
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("app.log");
    let app = format!(
        "[app.web]\ncommand = [\"sh\", \"-c\", \"echo started port=$PORT greeting=$GREETING; exec {WHARF} echo\"]\n\
         instances = 2\nport = {port}\nenv = {{ GREETING = \"hello\" }}\nlog = \"{}\"\n",
        log.display()
    );
    let wharf = Wharf::start_in(dir, "", &app_site(&app, ""));
    wait_serving(&wharf, 2).await;
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let reply = get(&wharf.url("/"), &[]).await;
        assert_eq!(reply.status, 200);
        ports.insert(reply.json()["port"].as_u64().expect("port"));
    }
    assert_eq!(ports, [port as u64, port as u64 + 1].into_iter().collect());
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    for (i, p) in [(0, port), (1, port + 1)] {
        let wanted = format!("started port={p} greeting=hello");
        let found = lines
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| {
                v["message"] == wanted.as_str()
                    && v["wharf"]["instance"] == i
                    && v["wharf"]["app"] == "web"
            });
        assert!(
            found,
            "no captured line {wanted:?} for instance {i}:\n{lines}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_ignores_port_gets_one_warning_naming_its_address() {
    let port = free_ports(2);
    // Runs, never listens on $PORT (like an app with its port hard-coded).
    let app = format!(
        "[app.web]\ncommand = [\"sleep\", \"60\"]\ninstances = 1\nport = {port}\nstart_timeout = \"1s\"\n"
    );
    let wharf = Wharf::start("", &app_site(&app, ""));
    let warnings = |wharf: &Wharf| -> Vec<serde_json::Value> {
        wharf
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["message"].as_str().is_some_and(|m| {
                    m.starts_with("instance has not listened on its port; does the app read $PORT?")
                })
            })
            .collect()
    };
    let warned = eventually(Duration::from_secs(5), || !warnings(&wharf).is_empty()).await;
    assert!(warned, "no warning: {:?}", wharf.logs());
    let event = &warnings(&wharf)[0];
    assert_eq!(event["level"], "WARN", "{event}");
    assert_eq!(event["app"], "web", "{event}");
    assert_eq!(event["instance"], 0, "{event}");
    assert_eq!(event["addr"], format!("127.0.0.1:{port}"), "{event}");

    // Once per start, not once per probe.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(warnings(&wharf).len(), 1, "{:?}", wharf.logs());
    assert_eq!(get(&wharf.url("/"), &[]).await.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unrunnable_program_is_named_with_the_fix_and_retried() {
    let port = free_ports(4);
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("server.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").expect("script");
    let missing = dir.path().join("bin/server");
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\n\
         [upstream.web]\napp = \"web\"\n\n[upstream.other]\napp = \"other\"\n\n[upstream.bare]\napp = \"bare\"\n\n\
         [app.web]\ncommand = [\"{}\"]\ninstances = 1\nport = {port}\nbackoff = \"100ms\"\n\n\
         [app.other]\ncommand = [\"{}\"]\ninstances = 1\nport = {}\nbackoff = \"100ms\"\n\n\
         [app.bare]\ncommand = [\"no-such-wharf-test-program\"]\ninstances = 1\nport = {}\nbackoff = \"100ms\"\n",
        missing.display(),
        script.display(),
        port + 1,
        port + 2,
    );
    let mut wharf = Wharf::start_in(dir, "", &body);
    let errors = |wharf: &Wharf, app: &str| -> Vec<String> {
        events(wharf, "cannot start instance")
            .into_iter()
            .filter(|e| e["app"] == app)
            .map(|e| e["error"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // Restarts go on with backoff: the user may install the program.
    let retried = eventually(Duration::from_secs(10), || {
        ["web", "other", "bare"]
            .iter()
            .all(|app| errors(&wharf, app).len() >= 2)
    })
    .await;
    assert!(retried, "{:?}", wharf.logs());
    assert!(wharf.is_running());

    let web = &errors(&wharf, "web")[0];
    assert!(
        web.contains(&missing.display().to_string())
            && web.contains("does not exist")
            && web.contains("app.web.command"),
        "{web}"
    );
    let other = &errors(&wharf, "other")[0];
    assert!(
        other.contains("server.sh")
            && other.contains("not executable")
            && other.contains("chmod +x"),
        "{other}"
    );
    let bare = &errors(&wharf, "bare")[0];
    assert!(
        bare.contains("\"no-such-wharf-test-program\"")
            && bare.contains("not found in PATH")
            && bare.contains("app.bare.command"),
        "{bare}"
    );
}

/// `wharf status --ready --admin ADDR`: its exit code and what it said.
fn status_ready(admin: std::net::SocketAddr) -> (Option<i32>, String) {
    let output = Command::new(WHARF)
        .args(["status", "--ready", "--admin", &admin.to_string()])
        .output()
        .expect("run wharf status --ready");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_an_app_behind_an_upstream_to_serve() {
    // An app that takes two seconds to listen: a load balancer (or a
    // Kubernetes rollout) must not send traffic to this wharf before then.
    let port = free_ports(2);
    let app = format!(
        "[app.web]\ncommand = [\"sh\", \"-c\", \"sleep 2; exec {WHARF} echo\"]\n\
         port = {port}\nbackoff = \"300ms\"\nstop_timeout = \"2s\"\n"
    );
    let wharf = Wharf::start("", &app_site(&app, ""));
    let url = format!("http://{}/readyz", wharf.admin);
    let early = get(&url, &[]).await;
    assert_eq!(early.status, 503, "{}", early.text());
    assert_eq!(
        early.json()["apps_not_serving"][0],
        "web",
        "{}",
        early.text()
    );
    let (code, said) = status_ready(wharf.admin);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("no instance serving yet: web"), "{said}");

    wait_serving(&wharf, 1).await;
    let ready = get(&url, &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let (code, said) = status_ready(wharf.admin);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(said, "ready\n");
}
