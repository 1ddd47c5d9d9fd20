//! The image's health check and the pod's readiness probe: the same
//! `wharf status --ready`, which answers for a running wharf and fails,
//! bounded in time, for one that is gone or does not answer.

use std::process::Command;

use super::support::{free_ports, Wharf, WHARF};
use super::*;

#[test]
fn the_health_check_and_the_readiness_probe_ask_the_running_wharf() {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = free_ports(1);
    let config = site(dir.path(), 8080, admin, "");
    let config_arg = config.to_str().expect("utf-8");
    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    let health = exec_form(&dockerfile, "  CMD [");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
    let documents = yaml_documents(&manifests, dir.path());
    let container = &kind(&documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let probe: Vec<String> =
        serde_json::from_value(container["readinessProbe"]["exec"]["command"].clone())
            .expect("exec probe");
    assert_eq!(health, probe, "the same question in both");
    assert_eq!(
        health[1..],
        [
            "status",
            "--ready",
            "--admin",
            &format!("127.0.0.1:{admin}")
        ]
    );

    // A wharf serving on loopback, with the admin API the config names.
    let running = tempfile::tempdir().expect("temp dir");
    let mut wharf = Wharf::start_with_config(
        running,
        &format!("[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:{admin}\"\n[log]\nformat = \"json\"\n"),
    );
    for argv in [&health, &probe] {
        let asked = run_in_place(argv);
        assert!(asked.status.success(), "{asked:?}");
        assert_eq!(String::from_utf8_lossy(&asked.stdout), "ready\n");
    }
    let _ = wharf.child.kill();
    let _ = wharf.child.wait();
    let asked = run_in_place(&health);
    assert_eq!(asked.status.code(), Some(1), "{asked:?}");
    let said = String::from_utf8_lossy(&asked.stderr);
    assert!(said.contains("cannot reach the admin API"), "{said}");
}

#[tokio::test]
async fn a_health_check_that_gets_no_answer_fails_within_its_timeout() {
    // An admin address whose connect hangs, as behind a dropping firewall.
    let hanging = support::unanswered().await;
    let addr = hanging.addr.to_string();
    let started = std::time::Instant::now();
    let asked = tokio::task::spawn_blocking(move || {
        Command::new(WHARF)
            .args(["status", "--ready", "--admin", &addr])
            .output()
            .expect("run wharf status --ready")
    })
    .await
    .expect("join");
    assert_eq!(asked.status.code(), Some(1), "{asked:?}");
    let said = String::from_utf8_lossy(&asked.stderr);
    assert!(said.contains("did not answer within 3s"), "{said}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
