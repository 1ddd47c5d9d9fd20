//! What `wharf run` tells the user when it starts, or cannot: the summary
//! of what is served, and the advice when a port is taken.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_one_supervised_instance_in_the_singular() {
    let port = free_ports(2);
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\n\
         [upstream.web]\napp = \"web\"\n\n\
         [app.web]\ncommand = [\"{WHARF}\", \"echo\"]\ninstances = 1\nport = {port}\n"
    );
    let wharf = Wharf::start("", &body);
    let summary = "-> proxy to web (1 supervised instance of app web)";
    let printed = eventually(Duration::from_secs(5), || wharf.logs_contain(summary)).await;
    assert!(printed, "{:?}", wharf.logs());
}

#[test]
fn a_taken_port_written_in_the_config_is_not_blamed_on_port() {
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
        .env_remove("PORT")
        .stdin(Stdio::null())
        .output()
        .expect("run wharf");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let advice = stderr
        .lines()
        .find(|line| line.starts_with("wharf: cannot listen on"))
        .unwrap_or_else(|| panic!("no bind error in:\n{stderr}"));
    assert!(advice.contains("choose another port"), "{advice}");
    // PORT is only named for addresses written with ${PORT}.
    assert!(!advice.contains("(or set PORT)"), "{advice}");
    assert!(advice.contains("${PORT}"), "{advice}");
}
