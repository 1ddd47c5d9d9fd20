//! Rolling deploys: under load without a failed request, a deploy whose
//! new instances never get healthy leaving the old ones serving, and a
//! changed `[app.NAME]` deployed on reload.

use super::*;

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
