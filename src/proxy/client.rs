//! The pooled HTTP/1.1 client wharf uses to reach upstream servers.
//!
//! One client per distinct connect timeout, shared by every pool with that
//! timeout and kept across reloads (see `ClientCache`), so a reload does not
//! throw away warm keep-alive connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;

/// A pooled keep-alive client to upstream servers.
pub type UpstreamClient = Client<HttpConnector, Body>;

/// Builds a client whose TCP connect gives up after `connect_timeout`.
pub fn build(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// Clients kept across reloads, keyed by connect timeout. Only touched
/// while building a snapshot, never on the request path.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<Duration, UpstreamClient>>,
}

impl ClientCache {
    pub fn get(&self, connect_timeout: Duration) -> UpstreamClient {
        let mut clients = match self.clients.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        clients
            .entry(connect_timeout)
            .or_insert_with(|| build(connect_timeout))
            .clone()
    }
}
