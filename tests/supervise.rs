//! Supervision of real app processes (`wharf echo`, `sh`, `tail`): ports
//! and environment, restarts with backoff, rolling deploys under load,
//! failed deploys, limits, and no instance outliving wharf.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use support::*;

fn app_site(app_section: &str, upstream_extra: &str) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\n\
         [upstream.web]\napp = \"web\"\nretries = 1\nretry_backoff = \"10ms\"\n{upstream_extra}\n\n{app_section}\n"
    )
}

fn echo_app(port: u16, extra: &str) -> String {
    format!("[app.web]\ncommand = [\"{WHARF}\", \"echo\"]\ninstances = 2\nport = {port}\nbackoff = \"300ms\"\nstop_timeout = \"2s\"\n{extra}\n")
}

/// Log lines (wharf's own, JSON) whose message is `message`.
fn events(wharf: &Wharf, message: &str) -> Vec<serde_json::Value> {
    wharf
        .logs
        .lock()
        .expect("logs")
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

async fn wait_serving(wharf: &Wharf, instances: usize) {
    let ok = eventually(Duration::from_secs(10), || {
        events(wharf, "instance ready").len() >= instances
    })
    .await;
    assert!(
        ok,
        "instances never became ready: {:?}",
        wharf.logs.lock().expect("logs")
    );
}

/// Sends GETs from `workers` clients until `stop`, returning (ok, failed statuses).
fn load(
    url: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<u16>)> {
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (url, stop) = (url.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let client = client();
                let (mut ok, mut failed) = (0, Vec::new());
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let reply = send(&client, Method::GET, &url, &[], b"").await;
                    if reply.status == 200 {
                        ok += 1;
                    } else {
                        failed.push(reply.status.as_u16());
                    }
                }
                (ok, failed)
            }));
        }
        let mut total = (0, Vec::new());
        for task in tasks {
            let (ok, failed) = task.await.expect("worker");
            total.0 += ok;
            total.1.extend(failed);
        }
        total
    })
}

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
async fn a_killed_instance_costs_almost_no_requests_and_comes_back() {
    let port = free_ports(4);
    let wharf = Wharf::start("", &app_site(&echo_app(port, ""), ""));
    wait_serving(&wharf, 2).await;
    let pid = events(&wharf, "instance started")
        .iter()
        .find(|v| v["instance"] == 0)
        .and_then(|v| v["pid"].as_u64())
        .expect("pid of instance 0");
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(wharf.url("/"), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    let back = eventually(Duration::from_secs(5), || {
        events(&wharf, "instance ready").len() >= 3
    })
    .await;
    let back_after = killed.elapsed();
    assert!(back, "instance never came back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = traffic.await.expect("load");
    let total = ok + failed.len();
    println!(
        "{total} requests, {} failed, instance back after {back_after:?}",
        failed.len()
    );
    assert!(total > 300, "too few requests: {total}");
    assert!(
        failed.len() as f64 <= total as f64 * 0.001,
        "failed: {failed:?} of {total}"
    );
    // backoff is 300ms; startup of `wharf echo` is quick.
    assert!(
        back_after < Duration::from_millis(300 + 1500),
        "back after {back_after:?}"
    );
    let exited = events(&wharf, "instance exited");
    assert!(
        exited.iter().any(|v| v["reason"] == "killed by SIGKILL"),
        "{exited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_command_backs_off_1s_2s_4s() {
    let port = free_ports(2);
    let app = format!("[app.web]\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nport = {port}\nbackoff = \"1s\"\nmax_backoff = \"8s\"\n");
    let wharf = Wharf::start("", &app_site(&app, ""));
    let ok = eventually(Duration::from_secs(12), || {
        events(&wharf, "instance started").len() >= 4
    })
    .await;
    assert!(ok, "not enough restarts");
    let times: Vec<humantime::Timestamp> = events(&wharf, "instance started")
        .iter()
        .filter_map(|v| v["timestamp"].as_str()?.parse().ok())
        .collect();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| {
            let (a, b): (std::time::SystemTime, std::time::SystemTime) = (w[0].into(), w[1].into());
            b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0)
        })
        .collect();
    println!("gaps between starts: {gaps:?}");
    for (gap, expected) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        assert!(
            (gap - expected).abs() < 0.4,
            "gap {gap:.2}s, expected {expected}s; all gaps {gaps:?}"
        );
    }
    assert!(events(&wharf, "instance exited")
        .iter()
        .any(|v| v["reason"] == "exit code 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_under_load_fails_no_request() {
    let port = free_ports(4);
    let wharf = Wharf::start("", &app_site(&echo_app(port, ""), ""));
    wait_serving(&wharf, 2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(wharf.url("/"), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let admin = wharf.admin.to_string();
        move || {
            Command::new(WHARF)
                .args(["deploy", "web", "--admin", &admin])
                .output()
        }
    })
    .await
    .expect("join")
    .expect("wharf deploy");
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = traffic.await.expect("load");
    println!(
        "deploy took {took:?}; {ok} requests ok, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed during deploy: {failed:?}");
    assert!(ok > 100);
    // Both instances were replaced by new processes, one at a time.
    assert_eq!(
        events(&wharf, "new instance is healthy and in the pool").len(),
        2
    );
    assert_eq!(events(&wharf, "old instance drained and stopped").len(), 2);
    let started = events(&wharf, "instance started");
    let pids: std::collections::BTreeSet<u64> =
        started.iter().filter_map(|v| v["pid"].as_u64()).collect();
    assert_eq!(pids.len(), 4, "{started:?}");
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let reply = get(&wharf.url("/"), &[]).await;
        ports.insert(reply.json()["port"].as_u64().expect("port"));
    }
    assert_eq!(ports.len(), 2);
    assert!(ports
        .iter()
        .all(|p| (port as u64..port as u64 + 4).contains(p)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_never_gets_healthy_leaves_the_old_instances_serving() {
    let port = free_ports(4);
    let dir = tempfile::tempdir().expect("dir");
    let marker = dir.path().join("broken");
    // Once `broken` exists, new instances start but never listen.
    let app = format!(
        "[app.web]\ncommand = [\"sh\", \"-c\", \"if [ -e {} ]; then exec sleep 60; else exec {WHARF} echo; fi\"]\n\
         instances = 2\nport = {port}\nstart_timeout = \"1s\"\nstop_timeout = \"1s\"\n",
        marker.display()
    );
    let wharf = Wharf::start_in(dir, "", &app_site(&app, ""));
    wait_serving(&wharf, 2).await;
    std::fs::write(&marker, "").expect("marker");
    let output = Command::new(WHARF)
        .args(["deploy", "web", "--admin", &wharf.admin.to_string()])
        .output()
        .expect("wharf deploy");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did not become healthy"), "{stderr}");
    // wharf's own log says so too, for whoever reads it rather than the CLI.
    assert!(
        wharf
            .logs()
            .iter()
            .any(|l| l.contains("deploy failed") && l.contains("did not become healthy")),
        "{:?}",
        wharf.logs()
    );
    for _ in 0..20 {
        let reply = get(&wharf.url("/"), &[]).await;
        assert_eq!(reply.status, 200);
        let served_by = reply.json()["port"].as_u64().expect("port");
        assert!(served_by == port as u64 || served_by == port as u64 + 1);
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && (l.contains("Z") || l.contains("X")))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_instance_outlives_wharf_after_sigterm_or_sigkill() {
    for signal in ["TERM", "KILL"] {
        let port = free_ports(4);
        let mut wharf = Wharf::start("", &app_site(&echo_app(port, ""), ""));
        wait_serving(&wharf, 2).await;
        let pids: Vec<u64> = events(&wharf, "instance started")
            .iter()
            .filter_map(|v| v["pid"].as_u64())
            .collect();
        assert_eq!(pids.len(), 2);
        assert!(pids.iter().all(|p| alive(*p)));
        wharf.signal(signal);
        wharf
            .wait_exit(Duration::from_secs(10))
            .expect("wharf exited");
        let gone = eventually(Duration::from_secs(3), || pids.iter().all(|p| !alive(*p))).await;
        assert!(gone, "instances {pids:?} outlived wharf after SIG{signal}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_kill_is_reported_as_such() {
    let port = free_ports(2);
    // tail keeps a line-less stream in memory until the limit kills it.
    let app = format!(
        "[app.web]\ncommand = [\"tail\", \"/dev/zero\"]\nport = {port}\nmemory_limit = \"32MiB\"\nbackoff = \"10s\"\n"
    );
    let wharf = Wharf::start("", &app_site(&app, ""));
    let limits = events(&wharf, "starting app");
    println!("limits: {:?}", limits.first().map(|v| v["limits"].clone()));
    let reported = eventually(Duration::from_secs(10), || {
        !events(&wharf, "instance killed by the memory limit").is_empty()
    })
    .await;
    assert!(
        reported,
        "no memory-limit report; logs: {:?}",
        wharf.logs.lock().expect("logs")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_app_section_and_reloading_deploys_without_failures() {
    let port = free_ports(4);
    let wharf = Wharf::start(
        "",
        &app_site(&echo_app(port, "env = { VERSION = \"1\" }"), ""),
    );
    wait_serving(&wharf, 2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(wharf.url("/"), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    wharf.rewrite(
        "",
        &app_site(&echo_app(port, "env = { VERSION = \"2\" }"), ""),
    );
    wharf.signal("HUP");
    let deployed = eventually(Duration::from_secs(20), || {
        !events(&wharf, "deploy after reload finished").is_empty()
    })
    .await;
    assert!(deployed, "no deploy after the reload");
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = traffic.await.expect("load");
    println!(
        "{ok} requests ok, {} failed during the reload deploy",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(events(&wharf, "instance started").len(), 4);
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
