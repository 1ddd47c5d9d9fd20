//! The immutable snapshot of everything a request needs, built from a
//! `Config` once per load and swapped in atomically on reload.
//!
//! In: a validated `Config` (plus what survives reloads: upstream clients,
//! the open access log). Out: host table, site stacks, pools and limits.
//! Building can still fail (a static dir vanished, a log file cannot be
//! opened); then the old snapshot keeps serving.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use ipnet::IpNet;

use crate::balance::state::Registry;
use crate::balance::Pool;
use crate::config::{self, Config};
use crate::files::StaticFiles;
use crate::observe::access::AccessLog;
use crate::observe::metrics::RouteMetrics;
use crate::observe::request::{self, Unrouted};
use crate::proxy::client::ClientCache;
use crate::route::headers::RouteHeaders;
use crate::route::{HostTable, PathTable};
use crate::site::error_pages::ErrorPages;
use crate::site::{self, SiteService};
use crate::supervise::Supervisor;

/// Why a config could not be turned into a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("static directory {path} for route {route} cannot be served: {source}; check that it exists and wharf may read it")]
    Static {
        path: String,
        route: String,
        source: std::io::Error,
    },
    #[error("access log {target:?} cannot be opened: {source}; check the path in log.access and its permissions")]
    AccessLog {
        target: config::AccessLog,
        source: std::io::Error,
    },
    #[error("route {route}: {message}")]
    Route { route: String, message: String },
    #[error("error pages in {path} cannot be read: {source}; check site.error_pages and the files in it")]
    ErrorPages {
        path: String,
        source: std::io::Error,
    },
}

/// Everything the request path reads, immutable once built.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub hosts: HostTable,
    pub sites: Vec<SiteService>,
    /// Per site, its routes when the HTTP/1.1 fast path may answer them
    /// without the site's stack (the site has no CORS layer).
    pub fast: Vec<Option<Arc<site::Routes>>>,
    pub pools: BTreeMap<String, Arc<Pool>>,
    pub access: Arc<AccessLog>,
    /// Metrics handles for requests no route answered.
    pub unrouted: Unrouted,
    trusted: Vec<IpNet>,
    /// HTTP/1.1 + HTTP/2 connection settings from `[server]`.
    pub connection: auto::Builder<TokioExecutor>,
}

impl Snapshot {
    /// Builds a snapshot. `previous` lends what should survive a reload.
    pub fn build(
        config: Config,
        clients: &ClientCache,
        registry: &Registry,
        supervisor: &Supervisor,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, BuildError> {
        let access = match previous {
            Some(old) if old.access.target() == &config.log.access => old.access.clone(),
            _ => Arc::new(AccessLog::open(&config.log.access).map_err(|source| {
                BuildError::AccessLog {
                    target: config.log.access.clone(),
                    source,
                }
            })?),
        };

        let pools: BTreeMap<String, Arc<Pool>> = config
            .upstreams
            .iter()
            .map(|(name, upstream)| {
                let client = clients.get(upstream.connect_timeout);
                let instances = upstream.app.as_deref().map(|app| supervisor.members(app));
                let pool = Pool::new(
                    name,
                    upstream,
                    client,
                    registry,
                    previous.is_some(),
                    instances,
                );
                (name.clone(), Arc::new(pool))
            })
            .collect();

        let mut sites = Vec::with_capacity(config.sites.len());
        let mut fast = Vec::with_capacity(config.sites.len());
        for site in &config.sites {
            let mut routes = Vec::with_capacity(site.routes.len());
            let site_label = request::site_label(&site.hosts);
            for route in &site.routes {
                let upstream = match &route.action {
                    config::Action::Proxy { upstream, .. } => upstream.as_str(),
                    _ => "",
                };
                let headers = route_headers(route);
                let route_state = site::Route {
                    action: action(route, &pools, headers.clone())?,
                    metrics: RouteMetrics::new(&site_label, &route.path, upstream),
                    headers,
                    auth: route.basic_auth.as_ref().map(|auth| {
                        site::basic_auth::BasicAuth::new(&auth.realm, auth.users.clone())
                    }),
                };
                routes.push((route.path.clone(), route_state));
            }
            let error_pages = match &site.error_pages {
                Some(dir) => Some(Arc::new(ErrorPages::load(dir).map_err(|source| {
                    BuildError::ErrorPages {
                        path: dir.display().to_string(),
                        source,
                    }
                })?)),
                None => None,
            };
            let routes = Arc::new(site::Routes {
                table: PathTable::new(routes),
                max_body_size: config.server.max_body_size,
                error_pages,
            });
            fast.push(site.cors.is_none().then(|| routes.clone()));
            sites.push(site::service(routes, site.cors.as_ref()));
        }
        let hosts = HostTable::new(config.sites.iter().map(|s| s.hosts.as_slice()));
        let unrouted = Unrouted::new(config.sites.iter().map(|s| s.hosts.as_slice()));

        let mut connection = auto::Builder::new(TokioExecutor::new());
        let max_header = usize::try_from(config.server.max_header_size).unwrap_or(usize::MAX);
        connection
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.server.header_timeout)
            .max_buf_size(max_header.max(8192))
            .keep_alive(true);
        connection
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(max_header).unwrap_or(u32::MAX));

        Ok(Snapshot {
            trusted: config.server.trusted_proxies.clone(),
            config: Arc::new(config),
            hosts,
            sites,
            fast,
            pools,
            access,
            unrouted,
            connection,
        })
    }

    /// Starts background work (health checks) once this snapshot serves.
    pub fn activate(&self, registry: &Registry) {
        crate::observe::metrics::global().retain(&self.config);
        registry.retain(|upstream, addr| {
            self.pools
                .get(upstream)
                .is_some_and(|pool| pool.members.iter().any(|m| m.addr == addr))
        });
        for pool in self.pools.values() {
            pool.start_health_checks();
        }
    }

    /// Stops background work of a snapshot that has been replaced.
    pub fn retire(&self) {
        for pool in self.pools.values() {
            pool.retire();
        }
    }

    /// Whether a peer's forwarded headers may be believed.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// A route's `[site.route.headers]`, or `None` when it has none (the
/// request path then checks nothing).
fn route_headers(route: &config::Route) -> Option<Arc<RouteHeaders>> {
    let headers = RouteHeaders::new(
        route
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    (!headers.is_empty()).then(|| Arc::new(headers))
}

fn action(
    route: &config::Route,
    pools: &BTreeMap<String, Arc<Pool>>,
    headers: Option<Arc<RouteHeaders>>,
) -> Result<site::Action, BuildError> {
    let route_error = |message: String| BuildError::Route {
        route: route.path.clone(),
        message,
    };
    Ok(match &route.action {
        config::Action::Proxy {
            upstream,
            strip_prefix,
        } => match pools.get(upstream) {
            Some(pool) => site::Action::Proxy {
                pool: pool.clone(),
                strip: strip_prefix.then(|| Arc::from(route.path.as_str())),
            },
            None => return Err(route_error(format!("upstream {upstream} is not defined"))),
        },
        config::Action::Static { root, spa } => {
            let files = StaticFiles::new(root, *spa).map_err(|source| BuildError::Static {
                path: root.display().to_string(),
                route: route.path.clone(),
                source,
            })?;
            site::Action::Static(Arc::new(files.with_headers(headers)))
        }
        config::Action::Redirect { to, status } => site::Action::Redirect {
            status: StatusCode::from_u16(*status)
                .map_err(|_| route_error(format!("{status} is not a status code")))?,
            location: to.clone(),
            append_rest: to.ends_with('/') && route.path.ends_with('/'),
        },
        config::Action::Respond {
            status,
            body,
            content_type,
        } => site::Action::Respond {
            status: StatusCode::from_u16(*status)
                .map_err(|_| route_error(format!("{status} is not a status code")))?,
            body: Bytes::from(body.clone()),
            content_type: HeaderValue::from_str(content_type).map_err(|_| {
                route_error(format!(
                    "content_type {content_type:?} is not a valid header value"
                ))
            })?,
        },
    })
}
