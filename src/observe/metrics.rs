//! The metrics wharf keeps while it serves: request counts and durations by
//! site, route and upstream, upstream response times, retries, open
//! connections and reloads.
//!
//! Metrics are process-wide (like Prometheus' default registry): one
//! `Metrics` behind `global()`. The request path never looks a label set
//! up: `RouteMetrics` and `UpstreamMetrics` (handles.rs) are created when a
//! snapshot is built (one per route, one per pool), so recording is a few
//! atomic adds and one short histogram lock. State that other modules
//! already keep (server health, ejections, breaker, certificates, app
//! instances, the process) is not duplicated here; `scrape.rs` reads it
//! when Prometheus asks.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use super::handles::{RouteMetrics, UpstreamMetrics};
pub use super::totals::{Latency, Totals, TOTAL_BUCKETS_MS};
use crate::config::{self, Config};

/// Histogram buckets for request and upstream durations, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The status classes a response is counted under ("1xx".."5xx").
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub site: String,
    pub route: String,
    pub upstream: String,
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    site: String,
    route: String,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UpstreamLabels {
    pub upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Every metric wharf records itself.
pub struct Metrics {
    pub(super) requests: Family<RequestLabels, Counter>,
    pub(super) request_duration: HistogramFamily<RouteLabels>,
    in_flight: Gauge,
    pub(super) upstream_duration: HistogramFamily<UpstreamLabels>,
    pub(super) retries: Family<UpstreamLabels, Counter>,
    connections_open: Family<ListenerLabels, Gauge>,
    connections: Family<ListenerLabels, Counter>,
    lingering: Gauge,
    reloads: Family<ResultLabels, Counter>,
    last_reload_success: Gauge<f64, AtomicU64>,
    /// Whole-process totals the status page turns into rates.
    pub totals: Totals,
    /// Open client connections over every listener.
    open_connections: AtomicU64,
    /// Recent latency per upstream server, kept across reloads.
    pub(super) latency: Mutex<HashMap<(String, SocketAddr), Arc<Latency>>>,
    /// Label sets handed out so far, so a reload can drop the series of
    /// routes and upstreams it removed.
    pub(super) routes: Mutex<HashSet<RouteLabels>>,
    pub(super) upstreams: Mutex<HashSet<String>>,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics = new();
        // Both results exist from the start, so increase() sees the first one.
        for result in ["success", "failure"] {
            let _ = metrics.reloads.get_or_create_owned(&ResultLabels {
                result: result.to_string(),
            });
        }
        metrics
    })
}

fn new() -> Metrics {
    Metrics {
        requests: Family::default(),
        request_duration: Family::new_with_constructor(duration_histogram),
        in_flight: Gauge::default(),
        upstream_duration: Family::new_with_constructor(duration_histogram),
        retries: Family::default(),
        connections_open: Family::default(),
        connections: Family::default(),
        lingering: Gauge::default(),
        reloads: Family::default(),
        last_reload_success: Gauge::default(),
        totals: Totals::default(),
        open_connections: AtomicU64::new(0),
        latency: Mutex::new(HashMap::new()),
        routes: Mutex::new(HashSet::new()),
        upstreams: Mutex::new(HashSet::new()),
    }
}

impl Metrics {
    /// Adds the recorded metrics to a scrape's registry (the families are
    /// shared handles; nothing is copied).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "wharf_requests",
            "Requests answered, by site, route, upstream and status class",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "wharf_request_duration",
            "Time from request head to the end of the response body",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        registry.register(
            "wharf_requests_in_flight",
            "Requests being answered now",
            self.in_flight.clone(),
        );
        registry.register_with_unit(
            "wharf_upstream_response_duration",
            "Time from sending a request upstream to its response head, per attempt",
            Unit::Seconds,
            self.upstream_duration.clone(),
        );
        registry.register(
            "wharf_upstream_retries",
            "Requests sent again to another upstream server",
            self.retries.clone(),
        );
        registry.register(
            "wharf_connections_open",
            "Client connections open now, by listener",
            self.connections_open.clone(),
        );
        registry.register(
            "wharf_connections",
            "Client connections accepted, by listener",
            self.connections.clone(),
        );
        registry.register(
            "wharf_connections_lingering",
            "Client connections past their last answer, closed for writing and read \
             until the client stops sending (lingering close)",
            self.lingering.clone(),
        );
        registry.register(
            "wharf_config_reloads",
            "Config reloads, by result (success or failure)",
            self.reloads.clone(),
        );
        registry.register(
            "wharf_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load",
            self.last_reload_success.clone(),
        );
    }

    /// Counts a reload (or the first load) by its result.
    pub fn reloaded(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        if success {
            self.loaded_now();
        }
    }

    /// Records that a config was loaded successfully just now.
    pub fn loaded_now(&self) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_reload_success.set(now.as_secs_f64());
    }

    /// Counts a connection as open until the guard drops. `listener` is the
    /// configured address the connection came in on.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGuard {
        let labels = ListenerLabels {
            listener: listener.to_string(),
        };
        self.connections.get_or_create(&labels).inc();
        let gauge = self.connections_open.get_or_create_owned(&labels);
        gauge.inc();
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(gauge)
    }

    /// Counts a connection as lingering (`server::conn::linger`) until the
    /// guard drops.
    pub fn lingering_started(&self) -> LingeringGuard {
        self.lingering.inc();
        LingeringGuard(self.lingering.clone())
    }

    /// Client connections open now, over every listener.
    pub fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Counts a request as in flight until the guard drops.
    pub fn request_started(&self) -> RequestGuard {
        self.in_flight.inc();
        RequestGuard(true)
    }

    /// Drops the series of routes and upstreams `config` no longer has, so a
    /// removed route does not report frozen numbers forever. Called when a
    /// snapshot starts serving; handles still held by in-flight requests of
    /// the old snapshot keep working, their numbers are just not exported.
    pub fn retain(&self, config: &Config) {
        let mut live: HashSet<RouteLabels> = HashSet::new();
        live.insert(route_labels("", "", ""));
        for site in &config.sites {
            let site_label = super::request::site_label(&site.hosts);
            live.insert(route_labels(&site_label, "", ""));
            for route in &site.routes {
                let upstream = match &route.action {
                    config::Action::Proxy { upstream, .. } => upstream.as_str(),
                    _ => "",
                };
                live.insert(route_labels(&site_label, &route.path, upstream));
            }
        }
        lock(&self.routes).retain(|labels| {
            if live.contains(labels) {
                return true;
            }
            for class in STATUS_CLASSES {
                self.requests.remove(&RequestLabels {
                    site: labels.site.clone(),
                    route: labels.route.clone(),
                    upstream: labels.upstream.clone(),
                    status_class: class.to_string(),
                });
            }
            self.request_duration.remove(labels);
            false
        });
        lock(&self.upstreams).retain(|name| {
            if config.upstreams.contains_key(name) {
                return true;
            }
            let labels = UpstreamLabels {
                upstream: name.clone(),
            };
            self.upstream_duration.remove(&labels);
            self.retries.remove(&labels);
            false
        });
        lock(&self.latency).retain(|(upstream, _), _| config.upstreams.contains_key(upstream));
    }

    /// Requests a route answered since start, and how many of them were 5xx.
    pub fn route_totals(&self, site: &str, route: &str, upstream: &str) -> (u64, u64) {
        let mut total = 0;
        let mut errors = 0;
        for class in STATUS_CLASSES {
            let labels = RequestLabels {
                site: site.to_string(),
                route: route.to_string(),
                upstream: upstream.to_string(),
                status_class: class.to_string(),
            };
            if let Some(counter) = self.requests.get(&labels) {
                total += counter.get();
                if class == "5xx" {
                    errors += counter.get();
                }
            }
        }
        (total, errors)
    }

    /// Recent latency of one upstream server, in milliseconds.
    pub fn server_latency_ms(&self, upstream: &str, addr: SocketAddr) -> Option<f64> {
        let map = lock(&self.latency);
        map.get(&(upstream.to_string(), addr))
            .and_then(|latency| latency.get_ms())
    }
}

/// Decrements the open-connections gauge when the connection ends.
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
        global().open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decrements the lingering gauge when the connection is closed.
pub struct LingeringGuard(Gauge);

impl Drop for LingeringGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Decrements the in-flight gauge when the response is finished.
#[derive(Debug)]
pub struct RequestGuard(bool);

impl RequestGuard {
    /// A guard that counts nothing (its request moved to another guard).
    pub fn disarmed() -> RequestGuard {
        RequestGuard(false)
    }

    pub fn is_armed(&self) -> bool {
        self.0
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0 {
            global().in_flight.dec();
        }
    }
}

pub(super) fn route_labels(site: &str, route: &str, upstream: &str) -> RouteLabels {
    RouteLabels {
        site: site.to_string(),
        route: route.to_string(),
        upstream: upstream.to_string(),
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Counts a client connection on the listener it came in on until the
/// guard drops. The label is the configured listener address (so
/// "0.0.0.0:8080", not the address the client dialled).
pub fn connection_opened(
    local: Option<SocketAddr>,
    snapshot: &crate::snapshot::Snapshot,
) -> ConnectionGuard {
    let server = &snapshot.config.server;
    let label = local.map_or_else(
        || "unknown".to_string(),
        |local| {
            server
                .listen
                .iter()
                .chain(&server.https)
                .find(|configured| {
                    configured.port() == local.port()
                        && (configured.ip() == local.ip() || configured.ip().is_unspecified())
                })
                .unwrap_or(&local)
                .to_string()
        },
    );
    global().connection_opened(&label)
}
