//! Shared harness for integration tests: a real `wharf` process with a
//! config written to a temp dir, an in-process echo backend, and a small
//! HTTP client. Everything binds 127.0.0.1 port 0.
//!
//! The process is in `process.rs`, backends and addresses in `backend.rs`,
//! the client in `client.rs`.
#![allow(dead_code)]

use std::time::{Duration, Instant};

mod backend;
mod client;
mod process;

// Each suite uses only part of the harness, so some of these re-exports
// go unused in any one test binary.
#[allow(unused_imports)]
pub use backend::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use process::*;

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
