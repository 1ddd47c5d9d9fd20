//! The life of a wharf process: config errors, reloads under load,
//! graceful shutdown, taken ports, the admin API and the CLI.
//!
//! This file holds the two site configs most tests run.

#[path = "../support/mod.rs"]
mod support;

mod config;
mod observe;
mod reload;
mod shutdown;
mod startup;
mod timeouts;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use support::*;

fn respond_site(body: &str) -> String {
    format!("[[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"{body}\"\n")
}

fn proxy_site(addr: std::net::SocketAddr) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{addr}\"]\n"
    )
}
