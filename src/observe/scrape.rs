//! `GET /metrics`: one Prometheus scrape.
//!
//! Each scrape builds a small registry: the families `metrics.rs` records
//! into (shared, not copied), plus families filled right now from state
//! other modules keep (upstream server health, ejection, breaker and
//! counters from `balance::state`, certificates, app instances, the
//! process). Reading at scrape time keeps the request path free of any
//! of this work and never lets two copies of a number disagree.

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use super::{metrics, process, sources, status};
use crate::balance::clock;
use crate::server::Server;

/// The content type of the Prometheus text format, version 0.0.4.
pub const TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    upstream: String,
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    app: String,
    instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Renders every metric; `openmetrics` picks the format Prometheus asks for
/// in `Accept`, else the classic text format.
pub fn render(server: &Server, openmetrics: bool) -> String {
    let mut registry = Registry::default();
    metrics::global().register(&mut registry);
    upstream_servers(server, &mut registry);
    certificates(server, &mut registry);
    instances(server, &mut registry);
    process_usage(&mut registry);
    let info: Family<VersionLabels, Gauge> = Family::default();
    info.get_or_create(&VersionLabels {
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
    .set(1);
    registry.register("wharf_build_info", "wharf's version; always 1", info);

    let mut out = String::with_capacity(16 * 1024);
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    if let Err(error) = encoded {
        tracing::error!(error = %error, "encoding metrics failed");
    }
    out
}

fn upstream_servers(server: &Server, registry: &mut Registry) {
    let up: Family<ServerLabels, Gauge> = Family::default();
    let available: Family<ServerLabels, Gauge> = Family::default();
    let ejected: Family<ServerLabels, Gauge> = Family::default();
    let breaker_open: Family<ServerLabels, Gauge> = Family::default();
    let in_flight: Family<ServerLabels, Gauge> = Family::default();
    let requests: Family<ServerLabels, Counter> = Family::default();
    let failures: Family<ServerLabels, Counter> = Family::default();
    let ejections: Family<ServerLabels, Counter> = Family::default();
    let breaker_opens: Family<ServerLabels, Counter> = Family::default();
    let health_changes: Family<ServerLabels, Counter> = Family::default();
    let snapshot = server.snapshot();
    let now = clock::now_ms();
    let instances = status::instance_states(server);
    for pool in snapshot.pools.values() {
        for (index, member) in pool.members.iter().enumerate() {
            let labels = ServerLabels {
                upstream: pool.name.clone(),
                server: member.authority.to_string(),
            };
            // The same reading as /status, so the two never disagree.
            let view = status::server_state(pool, index, &instances, now);
            up.get_or_create(&labels)
                .set(i64::from(view.health == "up"));
            available
                .get_or_create(&labels)
                .set(i64::from(view.available));
            ejected.get_or_create(&labels).set(i64::from(view.ejected));
            breaker_open
                .get_or_create(&labels)
                .set(i64::from(view.breaker != "closed"));
            in_flight
                .get_or_create(&labels)
                .set(i64::try_from(view.in_flight).unwrap_or(i64::MAX));
            let state = &member.state;
            let counters = &state.counters;
            let load = |counter: &AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
            requests
                .get_or_create(&labels)
                .inc_by(load(&counters.requests));
            failures
                .get_or_create(&labels)
                .inc_by(load(&counters.failures));
            ejections
                .get_or_create(&labels)
                .inc_by(load(&counters.ejections));
            breaker_opens
                .get_or_create(&labels)
                .inc_by(load(&counters.breaker_opens));
            health_changes
                .get_or_create(&labels)
                .inc_by(load(&counters.health_changes));
        }
    }
    registry.register(
        "wharf_upstream_server_up",
        "1 when the server answers: its active health is up and, for an app instance, its process runs and answered on its port",
        up,
    );
    registry.register(
        "wharf_upstream_server_available",
        "1 when the balancer may send the server new requests (up, not ejected, breaker closed, not draining, app instance ready)",
        available,
    );
    registry.register(
        "wharf_upstream_server_ejected",
        "1 while passive checks keep the server out",
        ejected,
    );
    registry.register(
        "wharf_upstream_server_breaker_open",
        "1 while the circuit breaker is open or half-open",
        breaker_open,
    );
    registry.register(
        "wharf_upstream_server_in_flight",
        "Requests the server is answering now",
        in_flight,
    );
    registry.register(
        "wharf_upstream_server_requests",
        "Attempts sent to the server",
        requests,
    );
    registry.register(
        "wharf_upstream_server_failures",
        "Attempts that failed (connect error, timeout, 5xx)",
        failures,
    );
    registry.register(
        "wharf_upstream_server_ejections",
        "Times passive checks ejected the server",
        ejections,
    );
    registry.register(
        "wharf_upstream_server_breaker_opens",
        "Times the circuit breaker opened",
        breaker_opens,
    );
    registry.register(
        "wharf_upstream_server_health_changes",
        "Times the active health changed",
        health_changes,
    );
}

fn certificates(server: &Server, registry: &mut Registry) {
    let expiry: Family<HostLabels, Gauge> = Family::default();
    for certificate in sources::certificates(server) {
        let labels = HostLabels {
            host: certificate.host.clone(),
        };
        expiry
            .get_or_create(&labels)
            .set(i64::try_from(certificate.not_after).unwrap_or(i64::MAX));
    }
    register_family(
        registry,
        "wharf_certificate_expiry_timestamp_seconds",
        "Unix time after which the certificate for the host expires",
        expiry,
    );
}

fn instances(server: &Server, registry: &mut Registry) {
    let up: Family<InstanceLabels, Gauge> = Family::default();
    let restarts: Family<InstanceLabels, Counter> = Family::default();
    for instance in sources::instances(server) {
        let labels = InstanceLabels {
            app: instance.app.clone(),
            instance: instance.index.to_string(),
        };
        up.get_or_create(&labels).set(i64::from(instance.up));
        restarts.get_or_create(&labels).inc_by(instance.restarts);
    }
    register_family(
        registry,
        "wharf_app_instance_up",
        "1 while the app instance runs (and passes its health check)",
        up,
    );
    register_family(
        registry,
        "wharf_app_instance_restarts",
        "Times wharf restarted the app instance",
        restarts,
    );
}

fn process_usage(registry: &mut Registry) {
    let usage = process::usage();
    if let Some(seconds) = usage.cpu_seconds {
        let cpu: Counter<f64, AtomicU64> = Counter::default();
        cpu.inc_by(seconds);
        registry.register_with_unit(
            "process_cpu",
            "Total user and system CPU time spent",
            Unit::Seconds,
            cpu,
        );
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size",
            usage.resident_bytes.map(|v| v as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size",
            usage.virtual_bytes.map(|v| v as f64),
        ),
        (
            "process_open_fds",
            "Open file descriptors",
            usage.open_fds.map(|v| v as f64),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            usage.max_fds.map(|v| v as f64),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch",
            usage.start_time_seconds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            let gauge = FloatGauge::default();
            gauge.set(value);
            registry.register(name, help, gauge);
        }
    }
}

/// Registers a family that may have no series (no certificates, no apps):
/// an empty one is still declared (HELP and TYPE), so dashboards and
/// alerts over it refer to a metric that exists and simply has no data.
fn register_family<L, M>(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    family: Family<L, M>,
) where
    L: prometheus_client::encoding::EncodeLabelSet
        + Clone
        + std::hash::Hash
        + Eq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    M: EncodeMetric + TypedMetric + Default + std::fmt::Debug + Send + Sync + 'static,
{
    if family.is_empty() {
        registry.register_collector(Box::new(Declared {
            name,
            help,
            kind: M::TYPE,
        }));
    } else {
        registry.register(name, help, family);
    }
}

/// A metric family with its description and no series.
#[derive(Debug)]
struct Declared {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
}

impl Collector for Declared {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // The help text gets the same final full stop `register` adds.
        let help = format!("{}.", self.help);
        encoder.encode_descriptor(self.name, &help, None, self.kind)?;
        Ok(())
    }
}
