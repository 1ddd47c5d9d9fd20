//! `wharf doctor` on where requests go: upstream servers that refuse a
//! connection, do not accept one in time, or fail their health path, and
//! apps whose program is missing or whose port another process holds.

use std::net::TcpListener;

use super::support::*;
use super::{doctor, free_listen, write_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_with_nothing_listening_fails_and_a_failing_health_path_warns() {
    let dead = dead_addr();
    let backend = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"gone\"\n\
         \x20 [[site.route]]\n  path = \"/api/\"\n  upstream = \"api\"\n\n\
         [upstream.gone]\nservers = [\"{dead}\"]\n\n\
         [upstream.api]\nservers = [\"{backend}\"]\n\n\
         [upstream.api.health]\npath = \"/health?status=404\"\n"
    );
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let line = report
        .line("FAIL", &[&format!("upstream.gone server {dead}")])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(
        line.contains(&format!(
            "nothing listens on {dead}; start the app or fix upstream.gone.servers"
        )),
        "{line}"
    );
    let line = report
        .line("warn", &[&format!("upstream.api server {backend}")])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains("answered 404, not 2xx"), "{line}");
    assert!(line.contains("would be marked down"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_does_not_accept_within_connect_timeout_fails_naming_the_timeout() {
    let silent = unanswered().await;
    let addr = silent.addr;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"slow\"\n\n\
         [upstream.slow]\nservers = [\"{addr}\"]\nconnect_timeout = \"300ms\"\n"
    );
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let line = report
        .line("FAIL", &[&format!("upstream.slow server {addr}")])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(
        line.contains(
            "no connection within 300ms (connect_timeout): \
             a firewall drops the packets, or the address is wrong"
        ),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "check upstream.slow.servers and the firewall between wharf and {addr}"
        )),
        "{line}"
    );
    assert_eq!(report.lines("FAIL").len(), 1, "{}", report.stdout);
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_whose_program_is_missing_fails_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_ports(2);
    let body = format!("[app.web]\ncommand = [\"./no-such-server\"]\nport = {port}\n");
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let line = report
        .line("FAIL", &["app.web", "no-such-server"])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains("does not exist"), "{line}");
    assert!(
        line.contains("fix the first element of app.web.command"),
        "{line}"
    );
    assert!(
        report
            .line(
                "ok",
                &[&format!("app.web ports {port}-{} are free", port + 1)]
            )
            .is_some(),
        "{}",
        report.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_port_taken_by_another_process_fails_naming_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_ports(4);
    // The second instance's port.
    let held = TcpListener::bind(("127.0.0.1", port + 1)).expect("bind");
    let body =
        format!("[app.web]\ncommand = [\"{WHARF}\", \"echo\"]\ninstances = 2\nport = {port}\n");
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    assert!(
        report.line("ok", &["app.web:", "can be started"]).is_some(),
        "{}",
        report.stdout
    );
    let line = report
        .line("FAIL", &[&format!("app.web port {}", port + 1)])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(
        line.contains(&format!("held by pid {}", std::process::id())),
        "{line}"
    );
    assert!(line.contains("move app.web.port"), "{line}");
    assert_eq!(report.lines("FAIL").len(), 1, "{}", report.stdout);
    drop(held);
}
