//! When an instance may take traffic: after each start, its port is
//! probed (a TCP connect, or the upstream's health path) until it answers,
//! and then the instance is marked running and serving, with the failures
//! its address collected before forgiven. An instance that does not
//! answer in time gets one warning saying why it gets no traffic. Taking
//! it out of rotation again is the lifecycle's (`instance.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Context, Instance, State};
use crate::config::HealthCheck;

/// An instance still not answering on its port after this long (or after
/// the app's `start_timeout`, when shorter) gets one warning per start.
const NOT_READY_WARNING: Duration = Duration::from_secs(10);

/// Marks the instance serving once its port answers: a TCP connect, or the
/// upstream's health check path when one is configured. Warns once when it
/// has not answered after `NOT_READY_WARNING` (or `start_timeout`, when
/// shorter): an app that ignores `PORT` would otherwise only show up as
/// 503s.
pub(super) async fn probe_until_ready(instance: Arc<Instance>, context: Arc<Context>) {
    let health = context.health.clone();
    let client = health
        .as_ref()
        .map(|h| crate::proxy::client::build(h.timeout));
    let warn_after = NOT_READY_WARNING.min(context.config.start_timeout);
    let warn_at = tokio::time::Instant::now() + warn_after;
    let mut warned = false;
    loop {
        let ok = match (&health, &client) {
            (Some(health), Some(client)) => {
                let uri = format!("http://{}{}", instance.addr, health.path);
                match http::Request::get(uri).body(crate::body::empty()) {
                    Ok(request) => matches!(
                        tokio::time::timeout(health.timeout, client.request(request)).await,
                        Ok(Ok(response)) if health.expect.contains(response.status().as_u16())
                    ),
                    Err(_) => false,
                }
            }
            _ => tokio::net::TcpStream::connect(instance.addr).await.is_ok(),
        };
        if ok {
            // Failures seen before the restart were the old process's.
            context.registry.forgive(instance.addr);
            instance.set_state(State::Running);
            instance.serving.store(true, Ordering::Release);
            tracing::info!(app = %instance.app, instance = instance.index, port = instance.port, "instance ready");
            return;
        }
        if !warned && tokio::time::Instant::now() >= warn_at {
            warned = true;
            warn_not_ready(&instance, health.as_ref(), warn_after).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Says why an instance is still out of the pool after `after`.
async fn warn_not_ready(instance: &Instance, health: Option<&HealthCheck>, after: Duration) {
    let listening = tokio::net::TcpStream::connect(instance.addr).await.is_ok();
    match health {
        Some(health) if listening => tracing::warn!(
            app = %instance.app,
            instance = instance.index,
            addr = %instance.addr,
            after = ?after,
            path = %health.path,
            "instance listens on its port but has not passed its health check; it gets no traffic until it does"
        ),
        _ => tracing::warn!(
            app = %instance.app,
            instance = instance.index,
            addr = %instance.addr,
            after = ?after,
            "instance has not listened on its port; does the app read $PORT? Each instance must listen on 127.0.0.1:$PORT and gets no traffic until it does"
        ),
    }
}
