//! Load balancing across real backends on loopback: weights, least
//! connections, IP hash, health checks, failover, retries and backups.
//!
//! This file holds the site config and `spread`, which sends many
//! requests at once and counts which backend answered each.

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod health;
mod retries;
mod selection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn site() -> &'static str {
    "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n"
}

/// Sends `total` GETs from `workers` concurrent keep-alive clients and
/// counts which backend port answered each.
async fn spread(
    url: &str,
    total: usize,
    workers: usize,
    headers: Vec<(String, String)>,
) -> (HashMap<u16, usize>, usize) {
    let counts = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (url, counts, failures, headers) = (
            url.to_string(),
            counts.clone(),
            failures.clone(),
            headers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = client();
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            for _ in 0..total / workers {
                let reply = send(&client, Method::GET, &url, &headers, b"").await;
                if reply.status == 200 {
                    let port = reply.json()["port"].as_u64().unwrap_or(0) as u16;
                    *counts.lock().expect("counts").entry(port).or_insert(0) += 1;
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    let counts = counts.lock().expect("counts").clone();
    (counts, failures.load(Ordering::Relaxed))
}
