//! Restarts: a killed instance comes back quickly with almost no failed
//! requests, a crash loop backs off, and a memory-limit kill is reported
//! as such.

use super::*;

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
async fn a_command_that_is_not_found_is_named_as_such_when_it_exits() {
    let port = free_ports(2);
    let app = format!(
        "[app.web]\ncommand = [\"sh\", \"-c\", \"exec no-such-server-for-wharf\"]\nport = {port}\nbackoff = \"5s\"\n"
    );
    let wharf = Wharf::start("", &app_site(&app, ""));
    let exited = eventually(Duration::from_secs(10), || {
        !events(&wharf, "instance exited").is_empty()
    })
    .await;
    assert!(exited, "{:?}", wharf.logs());
    let events = events(&wharf, "instance exited");
    let reason = events[0]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("exit code 127 ("), "{reason}");
    assert!(reason.contains("not found"), "{reason}");
    assert!(reason.contains("wharf doctor"), "{reason}");
}
