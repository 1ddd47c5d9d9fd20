//! What wharf records about each request once its response is finished:
//! the request metrics of its route, the in-flight gauge, and the access
//! log line.
//!
//! In: the response a site produced, the route the site's lookup chose (a
//! `RouteSlot` the request carried), the start time, the request ids and
//! the access log entry. Out: the same response with an
//! `X-Request-Id` header and a body that records everything when it ends
//! or is dropped (a client that goes away mid-body is still counted).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::access::{self, AccessLog, Entry, Outcome};
use super::metrics::{RequestGuard, RouteMetrics};
use super::trace::{Ids, X_REQUEST_ID};
use crate::body::{self, Body, BoxError};
use crate::config::HostPattern;
use crate::proxy::UpstreamUsed;

/// The handles for requests no route answered: one per site (CORS
/// preflights, no matching route) and one for hosts no site claims.
/// Built with the snapshot.
#[derive(Debug)]
pub struct Unrouted {
    sites: Vec<RouteMetrics>,
    no_site: RouteMetrics,
}

impl Unrouted {
    pub fn new<'a>(sites: impl IntoIterator<Item = &'a [HostPattern]>) -> Unrouted {
        Unrouted {
            sites: sites
                .into_iter()
                .map(|hosts| RouteMetrics::new(&site_label(hosts), "", ""))
                .collect(),
            no_site: RouteMetrics::new("", "", ""),
        }
    }

    /// The handles for requests of `site` (None: no site) no route answered.
    pub fn get(&self, site: Option<usize>) -> &RouteMetrics {
        site.and_then(|index| self.sites.get(index))
            .unwrap_or(&self.no_site)
    }
}

/// A site's `site` label: its first host pattern ("*" when it answers any
/// host). Bounded by the config, never taken from a request.
pub fn site_label(hosts: &[HostPattern]) -> String {
    hosts
        .first()
        .map_or_else(|| "*".to_string(), |host| String::from(host.clone()))
}

/// Which route a request went to: set by the site's route lookup
/// (site.rs) through the request extensions, read when the request is
/// recorded, including when the client leaves before the answer.
#[derive(Clone)]
pub struct RouteSlot(Slot);

#[derive(Clone)]
enum Slot {
    /// Filled later through a clone (the general path, whose route is
    /// found after the request's record is made).
    Shared(Arc<OnceLock<RouteMetrics>>),
    /// Known when the record is made (the fast path): no allocation.
    Known(RouteMetrics),
}

impl Default for RouteSlot {
    fn default() -> RouteSlot {
        RouteSlot(Slot::Shared(Arc::default()))
    }
}

impl RouteSlot {
    /// A slot holding `route` from the start.
    pub fn known(route: &RouteMetrics) -> RouteSlot {
        RouteSlot(Slot::Known(route.clone()))
    }

    /// Records the route; the first one set (or known) stays.
    pub fn set(&self, route: &RouteMetrics) {
        if let Slot::Shared(cell) = &self.0 {
            let _ = cell.set(route.clone());
        }
    }

    fn get(&self) -> Option<&RouteMetrics> {
        match &self.0 {
            Slot::Shared(cell) => cell.get(),
            Slot::Known(route) => Some(route),
        }
    }
}

/// What is known about a request before it is answered. If it is dropped
/// without reaching `finish` (the client closed the connection or reset
/// the stream while wharf waited for the answer), the request is recorded
/// as status 499, as nginx logs it, under its route (or `fallback`).
pub struct Started {
    pub start: Instant,
    pub in_flight: RequestGuard,
    pub ids: Ids,
    pub route: RouteSlot,
    /// Where the request is counted when no route answers it: its site's
    /// `route=""` series, or the `site=""` one (`Unrouted::get`).
    pub fallback: RouteMetrics,
    /// The access log and its entry, when the access log is on.
    pub log: Option<(Arc<AccessLog>, Entry)>,
}

/// The status recorded for a request whose client left before the answer.
pub const CLIENT_CLOSED: u16 = 499;

impl Drop for Started {
    fn drop(&mut self) {
        if !self.in_flight.is_armed() {
            return; // finished normally
        }
        let route = self.route.get().unwrap_or(&self.fallback);
        route.record(CLIENT_CLOSED, self.start.elapsed());
        if let Some((log, entry)) = self.log.take() {
            let outcome = Outcome {
                status: CLIENT_CLOSED,
                upstream: None,
            };
            access::write(&log, &entry, &outcome, 0);
        }
    }
}

/// Adds `X-Request-Id` and wraps the body so the request is recorded when
/// the response ends.
///
/// The id is marked never to be indexed by HTTP/2's header compression
/// (HPACK): it differs in every response, so indexing it only fills the
/// connection's table with ids nobody sends again, and the encoder (h2)
/// then compares each new id with every one in the table by name chain, about
/// 50 comparisons per response. Unindexed it costs 9 bytes more per
/// response on the wire (its name is sent as a literal) and no search
/// (docs/performance.md).
pub fn finish(mut response: Response<Body>, started: Started) -> Response<Body> {
    let mut request_id = started.ids.request_id.clone();
    request_id.set_sensitive(true);
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id);
    let status = response.status().as_u16();
    let upstream = response.extensions().get::<UpstreamUsed>().map(|u| u.0);
    let observation = observe(started, status, upstream);
    response.map(|inner| body::boxed(ObservedBody { inner, observation }))
}

/// For a response the HTTP/1.1 fast path writes itself (`h1`): the
/// request is recorded when the returned value is dropped, after the body
/// was sent or when the client went away.
pub fn answered(started: Started, status: u16, upstream: Option<SocketAddr>) -> Answered {
    Answered(observe(started, status, upstream))
}

/// A response being written by the fast path; see [`answered`].
pub struct Answered(Observation);

impl Answered {
    /// Counts body bytes sent to the client.
    pub fn sent(&mut self, bytes: u64) {
        self.0.bytes += bytes;
    }

    /// The client got wharf's `status` instead of the upstream's answer
    /// (whose body turned out broken before any of it was sent).
    pub fn instead(&mut self, status: u16) {
        self.0.status = status;
        if let Some((_, _, outcome)) = self.0.log.as_mut() {
            outcome.status = status;
        }
    }
}

fn observe(mut started: Started, status: u16, upstream: Option<SocketAddr>) -> Observation {
    let route = started.route.get().unwrap_or(&started.fallback).clone();
    let log = started
        .log
        .take()
        .map(|(log, entry)| (log, entry, Outcome { status, upstream }));
    Observation {
        start: started.start,
        route,
        status,
        // Disarms `started`: from here on the observation records the request.
        _in_flight: std::mem::replace(&mut started.in_flight, RequestGuard::disarmed()),
        log,
        bytes: 0,
    }
}

/// Records the request when dropped: after the body ends, or when the
/// client goes away mid-body.
struct Observation {
    start: Instant,
    route: RouteMetrics,
    status: u16,
    _in_flight: RequestGuard,
    log: Option<(Arc<AccessLog>, Entry, Outcome)>,
    bytes: u64,
}

impl Drop for Observation {
    fn drop(&mut self) {
        self.route.record(self.status, self.start.elapsed());
        if let Some((log, entry, outcome)) = &self.log {
            access::write(log, entry, outcome, self.bytes);
        }
    }
}

pin_project! {
    /// A response body that counts its bytes and records the request when
    /// it is finished.
    struct ObservedBody<B> {
        #[pin]
        inner: B,
        observation: Observation,
    }
}

impl<B> HttpBody for ObservedBody<B>
where
    B: HttpBody<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.observation.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::metrics;

    #[test]
    fn the_response_carries_the_request_id_marked_never_to_be_indexed() {
        let ids = super::super::trace::choose(None, None);
        let started = Started {
            start: Instant::now(),
            in_flight: metrics::global().request_started(),
            ids: ids.ids.clone(),
            route: RouteSlot::default(),
            fallback: RouteMetrics::new("test-site", "", ""),
            log: None,
        };
        let response = finish(Response::new(body::empty()), started);
        let sent = &response.headers()[&X_REQUEST_ID];
        assert_eq!(sent, ids.ids.request_id);
        // HTTP/2 (h2's HPACK encoder) sends a sensitive value as a
        // never-indexed literal and keeps it out of the connection's table.
        assert!(sent.is_sensitive());
    }
}
