//! Supervision of real app processes (`wharf echo`, `sh`, `tail`): ports
//! and environment, restarts with backoff, rolling deploys under load,
//! failed deploys, limits, and no instance outliving wharf.
//!
//! This file holds the site and app config and the helpers the tests
//! share: wharf's log events, waiting for instances, steady load.

#[path = "../support/mod.rs"]
mod support;

mod deploys;
mod restarts;
mod shutdown;
mod starting;

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
