//! Observability as users meet it: a Prometheus scrape that promtool
//! accepts, a real Prometheus computing a request rate, the status page in
//! headless Chromium turning a killed backend red, `wharf status`, request
//! ids and trace context at the backend and in the access log, the exported
//! Grafana dashboard, and the admin token.
//!
//! promtool and prometheus come from the Debian package `prometheus`,
//! chromium and chromedriver from `chromium` and `chromium-driver`
//! (scripts/test installs them). Tests that need them fail with a message
//! naming the package when they are missing.

#[path = "../support/mod.rs"]
mod support;

mod access_log;
mod admin;
mod browser;
mod exports;
mod metrics;
mod page;
mod status;
mod trace;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use support::*;

/// Fails the test with what to install when `tool` is missing.
fn require(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{tool}` is not installed: apt-get install {package} (scripts/test installs it)")
    })
}

/// Where tests keep files worth looking at afterwards (screenshots).
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/observe");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

fn free_port() -> u16 {
    free_ports(1)
}

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proxy_site(servers: &[SocketAddr], health: bool) -> String {
    let list: Vec<String> = servers.iter().map(|a| format!("\"{a}\"")).collect();
    let health = if health {
        "  [upstream.app.health]\n  path = \"/\"\n  interval = \"300ms\"\n  timeout = \"250ms\"\n  fails = 1\n  passes = 1\n"
    } else {
        ""
    };
    format!(
        "[[site]]\nhosts = [\"example.com\"]\n  [[site.route]]\n  path = \"/api/\"\n  upstream = \"app\"\n  \
         [[site.route]]\n  path = \"/\"\n  respond = \"home\"\n\n\
         [upstream.app]\nservers = [{}]\n{health}",
        list.join(", ")
    )
}

async fn traffic(wharf: &Wharf, requests: usize) {
    let client = client();
    for i in 0..requests {
        let path = if i % 3 == 0 { "/" } else { "/api/x" };
        send(
            &client,
            Method::GET,
            &wharf.url(path),
            &[("host", "example.com")],
            b"",
        )
        .await;
    }
    // A host no site claims: counted with site="".
    send(
        &client,
        Method::GET,
        &wharf.url("/"),
        &[("host", "nobody.test")],
        b"",
    )
    .await;
}

async fn scrape(wharf: &Wharf, headers: &[(&str, &str)]) -> String {
    let reply = get(&format!("http://{}/metrics", wharf.admin), headers).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

/// Scrapes until `ready` holds (a request is recorded when its response body
/// has been sent, which can be just after the client has read it), or 5 s.
async fn scrape_until(wharf: &Wharf, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = scrape(wharf, &[]).await;
        if ready(&metrics) || Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn wharf_status(wharf: &Wharf, extra: &[&str]) -> std::process::Output {
    Command::new(WHARF)
        .args(["status", "-c"])
        .arg(&wharf.config_path)
        .args(["--admin", &wharf.admin.to_string()])
        .args(extra)
        .env_remove("WHARF_ADMIN_TOKEN")
        .output()
        .expect("wharf status")
}

/// The row of `wharf status` for a server.
fn status_row(output: &str, server: SocketAddr) -> String {
    output
        .lines()
        .find(|l| l.contains(&server.to_string()))
        .unwrap_or_else(|| panic!("{server} not listed:\n{output}"))
        .to_string()
}
