//! `GET /status`: everything the status page and `wharf status` show, as
//! one JSON document.
//!
//! Built on demand from the serving snapshot, the upstream server states,
//! the metrics totals, the traffic history, certificates and app
//! instances. The same types deserialize the document in `wharf status`, so
//! the CLI and the server cannot drift apart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::history::{History, Point};
use super::sources::{self, unix_seconds};
use super::{metrics, process};
use crate::balance::breaker::Breaker;
use crate::balance::clock;
use crate::balance::state::Health;
use crate::balance::Pool;
use crate::config;
use crate::server::Server;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: u64,
    /// The config file (or `<embedded demo>`).
    pub config: String,
    /// Unix milliseconds when this document was made.
    pub time: u64,
    pub traffic: Traffic,
    pub sites: Vec<SiteStatus>,
    pub upstreams: Vec<UpstreamStatus>,
    pub apps: Vec<InstanceStatus>,
    pub certificates: Vec<CertificateStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Traffic {
    pub requests_total: u64,
    /// 5xx answers.
    pub errors_total: u64,
    pub in_flight: i64,
    pub connections_open: u64,
    /// One point per `history::STEP`, oldest first.
    pub history: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteStatus {
    pub hosts: Vec<String>,
    pub routes: Vec<RouteStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteStatus {
    pub path: String,
    /// "proxy", "static", "redirect" or "respond".
    pub action: String,
    /// The upstream, directory, redirect target or status.
    pub target: String,
    pub requests_total: u64,
    /// 5xx answers.
    pub errors_total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub name: String,
    pub balance: String,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerStatus {
    pub address: String,
    /// One word for people: "up", "down", "unknown", "starting",
    /// "ejected", "breaker_open" or "draining". "up" exactly when
    /// `available`.
    pub state: String,
    /// Whether the balancer may send it new requests now.
    pub available: bool,
    /// Whether it answers: "up", "down" or "unknown" (its active health
    /// check; for an app instance also whether its process runs and has
    /// answered on its port).
    pub health: String,
    pub ejected: bool,
    /// "closed", "open" or "half_open".
    pub breaker: String,
    pub draining: bool,
    pub backup: bool,
    pub weight: u32,
    pub in_flight: usize,
    pub requests_total: u64,
    pub failures_total: u64,
    /// Moving average of response times (response head), when measured.
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub app: String,
    pub index: u32,
    pub pid: Option<u32>,
    pub port: u16,
    pub state: String,
    pub up: bool,
    pub uptime_seconds: Option<u64>,
    pub restarts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateStatus {
    pub host: String,
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: u64,
    pub days_left: i64,
    pub issuer: String,
}

/// The status of `server` now.
pub fn collect(server: &Server, history: &History) -> Status {
    let snapshot = server.snapshot();
    let metrics = metrics::global();
    let now = SystemTime::now();
    let traffic = Traffic {
        requests_total: metrics.totals.requests.load(Ordering::Relaxed),
        errors_total: metrics.totals.errors.load(Ordering::Relaxed),
        in_flight: metrics.in_flight(),
        connections_open: metrics.open_connections(),
        history: history.points(),
    };
    let sites = snapshot
        .config
        .sites
        .iter()
        .map(|site| {
            let label = super::request::site_label(&site.hosts);
            SiteStatus {
                hosts: site.hosts.iter().cloned().map(String::from).collect(),
                routes: site.routes.iter().map(|r| route(&label, r)).collect(),
            }
        })
        .collect();
    let now_ms = clock::now_ms();
    let instances = instance_states(server);
    let upstreams = snapshot
        .pools
        .values()
        .map(|pool| UpstreamStatus {
            name: pool.name.clone(),
            balance: serde_json::to_value(pool.settings.balance)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            servers: pool
                .members
                .iter()
                .enumerate()
                .map(|(index, member)| ServerStatus {
                    address: member.authority.to_string(),
                    backup: member.backup,
                    weight: member.weight,
                    latency_ms: metrics.server_latency_ms(&pool.name, member.addr),
                    ..server_state(pool, index, &instances, now_ms)
                })
                .collect(),
        })
        .collect();
    let apps = sources::instances(server)
        .into_iter()
        .map(|i| InstanceStatus {
            app: i.app,
            index: i.index,
            pid: i.pid,
            port: i.port,
            state: i.state,
            up: i.up,
            uptime_seconds: i.uptime_seconds,
            restarts: i.restarts,
        })
        .collect();
    let certificates = sources::certificates(server)
        .into_iter()
        .map(|c| CertificateStatus {
            days_left: c.days_left(now),
            host: c.host,
            names: c.names,
            not_after: c.not_after,
            issuer: c.issuer,
        })
        .collect();
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_seconds: unix_seconds(now).saturating_sub(process::start_time() as u64),
        config: snapshot.config.source.clone(),
        time: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        traffic,
        sites,
        upstreams,
        apps,
        certificates,
    }
}

fn route(site: &str, route: &config::Route) -> RouteStatus {
    let (action, target) = match &route.action {
        config::Action::Proxy { upstream, .. } => ("proxy", upstream.clone()),
        config::Action::Static { root, .. } => ("static", root.display().to_string()),
        config::Action::Redirect { to, status } => ("redirect", format!("{status} {to}")),
        config::Action::Respond { status, .. } => ("respond", status.to_string()),
    };
    let upstream = if action == "proxy" {
        target.as_str()
    } else {
        ""
    };
    let (requests_total, errors_total) =
        metrics::global().route_totals(site, &route.path, upstream);
    RouteStatus {
        path: route.path.clone(),
        action: action.to_string(),
        target,
        requests_total,
        errors_total,
    }
}

/// The state of each supervised app instance ("starting", "backoff", ...)
/// by the address its upstream member carries.
pub(super) fn instance_states(server: &Server) -> HashMap<SocketAddr, String> {
    sources::instances(server)
        .into_iter()
        .map(|i| (i.addr, i.state))
        .collect()
}

/// The live state of `pool.members[index]`, as the balancer sees it: the
/// status page, `wharf status` and the metrics all read it from here.
/// `available` is exactly what `Pool::pick` asks of a server, so a server
/// shown available is one that gets requests. `health` says whether the
/// server answers: its active health check, and for an app instance, also
/// whether its process runs and has answered on its port yet (an instance
/// that is starting, crashed or waiting to restart is not up, whatever an
/// earlier check said). Address, weight, backup and latency are filled in
/// by the caller.
pub(super) fn server_state(
    pool: &Pool,
    index: usize,
    instances: &HashMap<SocketAddr, String>,
    now_ms: u64,
) -> ServerStatus {
    let Some(member) = pool.members.get(index) else {
        return ServerStatus::missing();
    };
    let state = &member.state;
    let breaker = match *lock(&state.breaker) {
        Breaker::Open { until_ms } if until_ms > now_ms => "open",
        Breaker::Open { .. } | Breaker::HalfOpen { .. } => "half_open",
        Breaker::Closed | Breaker::Counting(_) => "closed",
    };
    let ejected = state.is_ejected(now_ms);
    let draining = state.is_draining();
    let available = pool.available(index, &clock::Lazy::at(now_ms));
    let checked = match state.health() {
        Health::Up => "up",
        Health::Down => "down",
        Health::Unknown => "unknown",
    };
    let serving = member
        .serving
        .as_ref()
        .is_none_or(|serving| serving.load(Ordering::Acquire));
    let (word, health) = if serving {
        let word = match checked {
            "up" if draining => "draining",
            "up" if ejected => "ejected",
            "up" if !available => "breaker_open",
            other => other,
        };
        (word, checked)
    } else {
        // An app instance the supervisor keeps out of the pool.
        match instances.get(&member.addr).map(String::as_str) {
            // Started, not answering on its port yet.
            Some("starting") => ("starting", "unknown"),
            // Answering, but a deploy is draining or stopping it.
            Some("running" | "stopping") => ("draining", checked),
            // Crashed and waiting to restart, exited, or gone.
            _ => ("down", "down"),
        }
    };
    ServerStatus {
        address: String::new(),
        state: word.to_string(),
        available,
        health: health.to_string(),
        ejected,
        breaker: breaker.to_string(),
        draining: draining || (!serving && word == "draining"),
        backup: false,
        weight: 1,
        in_flight: state.in_flight(),
        requests_total: state.counters.requests.load(Ordering::Relaxed),
        failures_total: state.counters.failures.load(Ordering::Relaxed),
        latency_ms: None,
    }
}

impl ServerStatus {
    /// A server that is not in the pool (never shown; keeps callers total).
    fn missing() -> ServerStatus {
        ServerStatus {
            address: String::new(),
            state: "down".to_string(),
            available: false,
            health: "down".to_string(),
            ejected: false,
            breaker: "closed".to_string(),
            draining: false,
            backup: false,
            weight: 1,
            in_flight: 0,
            requests_total: 0,
            failures_total: 0,
            latency_ms: None,
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
