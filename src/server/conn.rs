//! One client connection: HTTP/1.1 or HTTP/2 (h2c prior knowledge, or ALPN
//! after the TLS handshake on HTTPS listeners) served by hyper, with idle
//! and shutdown handling, and the entry point of every request (`route`).
//! What HTTPS adds per request (ACME challenges, the redirect, HSTS) lives
//! in `tls::policy`; `route` only calls it. How a connection knows it has
//! gone idle is in `conn/idle.rs`; which HTTP/1 requests are refused
//! before routing (`Host`, transfer codings) in `conn/framing.rs`.
//!
//! Each request loads the current snapshot once, so a reload never changes
//! the rules under a request already in flight.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower::ServiceExt;

use super::Server;
use crate::body::Body;
use crate::observe::access::Entry;
use crate::observe::{metrics, request, trace};
use crate::proxy::{headers, ClientInfo};
use crate::response;
use crate::snapshot::Snapshot;
use crate::tls;

mod framing;
mod idle;
pub(crate) mod linger;

use idle::{idle, Activity, Tracked};

/// Serves one accepted connection until it closes, goes idle for
/// `idle_timeout`, or the server shuts down (in-flight requests finish).
/// HTTP/1.1 starts on the fast path (`h1`), which hands the connection to
/// hyper (`serve_hyper`) at the first request it does not relay itself.
///
/// Not an `async fn`: the connection's future is then `h1::serve`'s alone,
/// without a wrapper holding the arguments a second time (an idle
/// connection's memory is mostly this future).
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
) -> impl std::future::Future<Output = ()> + Send {
    let _ = stream.set_nodelay(true);
    let counted = server.connections.enter();
    let open = metrics::connection_opened(stream.local_addr().ok(), &server.snapshot());
    crate::h1::serve(stream, peer, server, "http", (counted, open))
}

/// Like `serve`, after the TLS handshake (`tls::Manager::accept`). HTTP/2
/// (chosen by ALPN) goes straight to hyper.
pub async fn serve_https(stream: TcpStream, peer: SocketAddr, server: Arc<Server>) {
    let _ = stream.set_nodelay(true);
    let timeout = server.snapshot().config.server.header_timeout;
    if let Some(stream) = server.tls.accept(stream, timeout).await {
        let counted = server.connections.enter();
        let open =
            metrics::connection_opened(Transport::local_addr(&stream).ok(), &server.snapshot());
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let _held = (counted, open);
            serve_hyper(stream, peer, server.clone(), "https").await
        } else {
            crate::h1::serve(stream, peer, server, "https", (counted, open)).await
        }
    }
}

/// Serves a connection with hyper: HTTP/1.1 with the whole stack, or
/// HTTP/2. The caller counts the connection.
pub async fn serve_hyper<S>(stream: S, peer: SocketAddr, server: Arc<Server>, scheme: &'static str)
where
    S: Transport,
{
    let snapshot = server.snapshot();
    let idle_timeout = snapshot.config.server.idle_timeout;
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked::new(stream, activity.clone()));
    let service_server = server.clone();
    let requests = activity.clone();
    // Rendered once per connection, not per request.
    let peer_header = http::HeaderValue::from_str(&peer.ip().to_string())
        .unwrap_or_else(|_| http::HeaderValue::from_static("unknown"));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        requests.request(!http_body::Body::is_end_stream(req.body()));
        let answer = route(req, peer, peer_header.clone(), scheme, &service_server);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    let connection = snapshot
        .connection
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    drop(snapshot);
    tokio::pin!(connection);
    let mut shutdown = server.shutdown_signal();
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(peer = %peer, error = %error, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = idle(&activity, idle_timeout), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What is left of a request once [`route`] has done its synchronous part:
/// the site's answer, or one already known. Boxed, so what hyper moves
/// around per request (into its HTTP/2 stream task, whose cell is
/// allocated for every stream) is a pointer, not this state.
type Answer = Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// The entry point of every request hyper serves. HTTPS around [`begin`]:
/// on plain HTTP, ACME challenges and the redirect to HTTPS are answered
/// instead of routing (still logged and counted like any response); on
/// HTTPS, HSTS is added.
///
/// Not an `async fn`: everything up to the site's service runs here, and
/// the future keeps only what the rest needs (the site's call, the
/// request's record, the TLS manager on HTTPS), about a third of what an
/// `async fn` holding the request, its arguments and the snapshot kept.
fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    peer_header: http::HeaderValue,
    scheme: &'static str,
    server: &Arc<Server>,
) -> Answer {
    let early = if let Some(status) = framing::refused(&req) {
        tracing::debug!(peer = %peer, status = status.as_u16(), "request refused: Host or framing");
        Some(framing::refusal(status, req.version()))
    } else {
        match scheme {
            "http" => tls::intercept(&req, &server.tls),
            _ => None,
        }
    };
    let (started, call) = begin(req, peer, peer_header, scheme, early, &server.snapshot());
    let https = (scheme == "https").then(|| server.clone());
    Box::pin(async move {
        let response = match call {
            Call::Answered(response) => response,
            Call::Site(call) => match call.await {
                Ok(response) => response,
                Err(never) => match never {},
            },
        };
        let mut response = request::finish(response, started);
        if let Some(server) = https {
            tls::secure(&mut response, &server.tls);
        }
        response
    })
}

/// How a request is answered after [`begin`].
#[allow(
    clippy::large_enum_variant,
    reason = "the large variant is the usual one, and the enum lives in the boxed `Answer`"
)]
enum Call {
    /// Known without asking a site: an HTTPS intercept, or no site for the
    /// host.
    Answered(Response<Body>),
    /// The site's stack, called once it is ready.
    Site(tower::util::Oneshot<crate::site::SiteService, Request<Incoming>>),
}

/// The synchronous part of every request: request id and trace context,
/// client facts, site by host, the record that metrics and the access log
/// take when the response body ends (observe/request.rs), and the call to
/// the site's stack.
fn begin(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    peer_header: http::HeaderValue,
    scheme: &'static str,
    early: Option<Response<Body>>,
    snapshot: &Snapshot,
) -> (request::Started, Call) {
    let start = Instant::now();
    let in_flight = metrics::global().request_started();
    // Put on the request only if it goes upstream (`proxy::forward`).
    let chosen = trace::read(req.headers());
    let ids = chosen.ids.clone();
    let peer_trusted = snapshot.is_trusted(peer.ip());
    let client_ip = headers::client_ip(req.headers(), peer.ip(), |ip| snapshot.is_trusted(ip));
    req.extensions_mut().insert(ClientInfo {
        peer,
        client_ip,
        peer_trusted,
        scheme,
        peer_header,
        trace: chosen,
        body_timeout: snapshot.config.server.idle_timeout,
    });
    let route = request::RouteSlot::default();
    req.extensions_mut().insert(route.clone());
    // An absolute-form target (and HTTP/2's :authority) wins over Host
    // (RFC 9112 3.2.2).
    let host: &str = match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => match req.headers().get(header::HOST) {
            Some(value) => value.to_str().unwrap_or(""),
            None => "",
        },
    };
    let site = snapshot.hosts.lookup(host);
    let entry = snapshot.access.enabled().then(|| Entry {
        start,
        timestamp: SystemTime::now(),
        method: req.method().clone(),
        version: req.version(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        host: (!host.is_empty()).then(|| crate::route::strip_port(host).to_string()),
        client: peer,
        client_ip,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        referrer: req
            .headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ids: Some(ids.clone()),
    });
    let started = request::Started {
        start,
        in_flight,
        ids,
        route,
        fallback: snapshot.unrouted.get(site).clone(),
        log: entry.map(|entry| (snapshot.access.clone(), entry)),
    };

    let call = match (early, site.and_then(|index| snapshot.sites.get(index))) {
        (Some(response), _) => Call::Answered(response),
        (None, Some(service)) => Call::Site(service.clone().oneshot(req)),
        // No site claims this host: like nginx's default server without a
        // match, answer 404 rather than guess.
        (None, None) => Call::Answered(response::status(StatusCode::NOT_FOUND)),
    };
    (started, call)
}

/// A client connection, TLS or not, as the servers need it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {
    /// The address the connection arrived on.
    fn local_addr(&self) -> std::io::Result<SocketAddr>;

    /// Ready when a read would find data (or EOF), without holding a
    /// buffer meanwhile: idle keep-alive connections then cost no buffer
    /// memory. Streams that buffer internally are always ready.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;

    /// Like `poll_read_ready`, but certain: a new socket may report itself
    /// readable before any byte arrived, so this looks (without taking
    /// anything) before saying yes. Costs a system call; used before the
    /// first request of a connection.
    fn poll_has_data(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_read_ready(cx)
    }

    /// The socket under the stream, to close it (`linger::close`), and
    /// whether bytes the client sent were read into wharf's own buffers
    /// and left there (a sign that it may be sending more).
    fn into_tcp(self) -> (TcpStream, bool)
    where
        Self: Sized;
}

impl Transport for TcpStream {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        TcpStream::local_addr(self)
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn poll_has_data(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        self.poll_peek(cx, &mut probe).map_ok(|_| ())
    }

    fn into_tcp(self) -> (TcpStream, bool) {
        (self, false)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.get_ref().0.local_addr()
    }

    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn into_tcp(self) -> (TcpStream, bool) {
        // What rustls holds decrypted is out of the kernel's buffers: only
        // bytes still in (or coming to) the socket make a reset.
        (self.into_inner().0, false)
    }
}
