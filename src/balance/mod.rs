//! Upstream pools: the servers behind an `[upstream.NAME]` and the choice of
//! which one takes the next request.
//!
//! A pool is built per config load from `config::Upstream`; it owns the
//! pooled HTTP client used to reach its servers. Selection is lock-free
//! (one atomic counter). Health state, weights and other algorithms attach
//! here without changing the proxy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::Upstream;
use crate::proxy::client::UpstreamClient;

/// One backend server of a pool.
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    /// `addr` pre-rendered for URIs and logs, so requests don't format it.
    pub authority: String,
}

/// A named pool of backends.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub backends: Vec<Backend>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub client: UpstreamClient,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(name: &str, upstream: &Upstream, client: UpstreamClient) -> Pool {
        Pool {
            name: name.to_string(),
            backends: upstream
                .servers
                .iter()
                .map(|s| Backend {
                    addr: s.addr,
                    authority: s.addr.to_string(),
                })
                .collect(),
            connect_timeout: upstream.connect_timeout,
            response_timeout: upstream.response_timeout,
            client,
            next: AtomicUsize::new(0),
        }
    }

    /// Round robin over the backends. `None` only for an empty pool.
    pub fn pick(&self) -> Option<&Backend> {
        if self.backends.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.backends.get(n % self.backends.len())
    }
}
