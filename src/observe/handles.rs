//! Recording handles: what the request path holds to count a request
//! without looking up a label set. `RouteMetrics` (one per route, and one
//! per site for requests no route answered) and `UpstreamMetrics` (one per
//! pool) are made when a snapshot is built, from the families in
//! `metrics.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::metrics::{global, lock, route_labels, RequestLabels, UpstreamLabels, STATUS_CLASSES};
use super::totals::Latency;

/// The recording handles of one route (or of a site's requests that matched
/// no route), created at snapshot build time.
#[derive(Clone, Debug)]
pub struct RouteMetrics(Arc<RouteHandles>);

#[derive(Debug)]
struct RouteHandles {
    by_class: [Counter; 5],
    duration: Histogram,
}

impl RouteMetrics {
    /// Handles for `site` (its first host pattern), `route` (the path
    /// prefix, "" for requests no route matched) and `upstream` ("" for
    /// routes that do not proxy).
    pub fn new(site: &str, route: &str, upstream: &str) -> RouteMetrics {
        let metrics = global();
        let by_class = STATUS_CLASSES.map(|class| {
            metrics.requests.get_or_create_owned(&RequestLabels {
                site: site.to_string(),
                route: route.to_string(),
                upstream: upstream.to_string(),
                status_class: class.to_string(),
            })
        });
        let labels = route_labels(site, route, upstream);
        let duration = metrics.request_duration.get_or_create_owned(&labels);
        lock(&metrics.routes).insert(labels);
        RouteMetrics(Arc::new(RouteHandles { by_class, duration }))
    }

    /// Records one finished request.
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.0.by_class[class].inc();
        let seconds = elapsed.as_secs_f64();
        self.0.duration.observe(seconds);
        global().totals.record(status >= 500, elapsed);
    }
}

/// The recording handles of one upstream pool, created with the pool.
#[derive(Clone, Debug)]
pub struct UpstreamMetrics {
    duration: Histogram,
    retries: Counter,
    /// Per member, in the pool's member order.
    latency: Vec<Arc<Latency>>,
}

impl UpstreamMetrics {
    pub fn new(upstream: &str, servers: impl IntoIterator<Item = SocketAddr>) -> UpstreamMetrics {
        let metrics = global();
        let labels = UpstreamLabels {
            upstream: upstream.to_string(),
        };
        let latency = {
            let mut map = lock(&metrics.latency);
            servers
                .into_iter()
                .map(|addr| map.entry((upstream.to_string(), addr)).or_default().clone())
                .collect()
        };
        lock(&metrics.upstreams).insert(upstream.to_string());
        UpstreamMetrics {
            duration: metrics.upstream_duration.get_or_create_owned(&labels),
            retries: metrics.retries.get_or_create_owned(&labels),
            latency,
        }
    }

    /// Records how long member `index` took to answer (response head).
    pub fn answered(&self, index: usize, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(latency) = self.latency.get(index) {
            latency.update(elapsed);
        }
    }

    pub fn retried(&self) {
        self.retries.inc();
    }
}
