//! Active health checks: one task per server of a pool that has
//! `[upstream.NAME.health]`, requesting `path` every `interval`.
//!
//! `fails` consecutive failures take a server out; `passes` consecutive
//! successes let it back in. A server added by a reload starts `Unknown`
//! and is let in after its first success. Tasks stop when the pool is
//! retired (replaced by a reload) or dropped.

use std::sync::Arc;

use http::{header, HeaderValue, Request, Uri};
use tokio::sync::watch;

use super::state::{Health, ServerState};
use crate::body;
use crate::config::HealthCheck;
use crate::proxy::client::UpstreamClient;

/// Starts checking `server` until `stop` changes or its sender drops.
pub fn spawn(
    server: Arc<ServerState>,
    settings: HealthCheck,
    client: UpstreamClient,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut passes = 0u32;
        let mut ticker = tokio::time::interval(settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match probe(&server, &settings, &client).await {
                Ok(()) => {
                    failures = 0;
                    passes += 1;
                    let needed = if server.health() == Health::Unknown {
                        1
                    } else {
                        settings.passes
                    };
                    if server.health() != Health::Up && passes >= needed {
                        server.set_health(Health::Up, "health check passed");
                    }
                }
                Err(reason) => {
                    passes = 0;
                    failures += 1;
                    tracing::debug!(upstream = %server.upstream, server = %server.addr, reason = %reason, "health check failed");
                    if server.health() != Health::Down && failures >= settings.fails {
                        server.set_health(Health::Down, &reason);
                    }
                }
            }
        }
    });
}

/// One check: GET path, expecting a status in `expect` within `timeout`.
async fn probe(
    server: &ServerState,
    settings: &HealthCheck,
    client: &UpstreamClient,
) -> Result<(), String> {
    let uri: Uri = format!("http://{}{}", server.addr, settings.path)
        .parse()
        .map_err(|e| format!("bad health check URI: {e}"))?;
    let mut request = Request::new(body::empty());
    *request.uri_mut() = uri;
    request.headers_mut().insert(
        header::USER_AGENT,
        HeaderValue::from_static("wharf-health-check"),
    );
    match tokio::time::timeout(settings.timeout, client.request(request)).await {
        Err(_) => Err(format!("no answer within {:?}", settings.timeout)),
        Ok(Err(error)) => Err(format!("request failed: {error}")),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            // Drain the body so the connection can be reused.
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
            if settings.expect.contains(status) {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }
    }
}
