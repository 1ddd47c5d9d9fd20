//! The HTTP/1.1 fast path: proxied requests relayed, and kept static
//! files answered, without hyper.
//!
//! Every HTTP/1.1 connection (plain, or TLS without `h2` in ALPN) starts
//! here. A request head is parsed with `httparse`; when it is an ordinary
//! request to a proxy route of a site without CORS, it is relayed to the
//! upstream over a raw keep-alive connection (`exchange/`): same server
//! choice, retries, forwarded headers, request ids, metrics and access log
//! as the general path, but no per-request futures, body channels or
//! header re-encoding. Compression is done here too, with the sites' own
//! compression layer (`exchange::compress::copy_compressed`): nearly
//! every HTTP client library and browser asks for it. A plain `GET` for a
//! static file `files::cache` keeps is answered from memory (`kept.rs`). The
//! first request that is anything else (other static requests, redirects,
//! WebSocket upgrades, chunked uploads, HTTP/1.0, errors) hands the
//! connection, with the bytes already read, to hyper
//! (`server::conn::serve_hyper`) for the rest of its life.
//!
//! An idle keep-alive connection holds no buffer: it waits for readability
//! first and takes one only when a request arrives, from the thread's
//! spare buffers (`spare.rs`) where the last idle connection left its own.

mod chunked;
pub mod client;
mod exchange;
mod head;
pub(crate) use head::count_codings;
mod kept;
mod prefixed;
mod spare;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::{Either, FutureExt};
use tokio::io::AsyncReadExt;

use crate::server::conn::{self, Transport};
use crate::server::Server;
use crate::site::Action;
use crate::tls;
use head::Parsed;
use spare::{Spare, READ_BUFFER};

/// What one connection knows about itself.
pub(crate) struct Client {
    pub peer: SocketAddr,
    pub scheme: &'static str,
}

/// Serves an HTTP/1.1 connection: relays what it can, hands the rest to
/// hyper. `held` (the connection's counters) is dropped when it ends.
///
/// An `async` block rather than an `async fn`: the block uses the
/// arguments where they were captured, where an `async fn` keeps them
/// twice (as arguments, and as the locals they are moved into), on every
/// idle connection.
#[allow(clippy::manual_async_fn)] // deliberately not an `async fn`: see above
pub fn serve<S: Transport, H: Send + 'static>(
    mut io: S,
    peer: SocketAddr,
    server: Arc<Server>,
    scheme: &'static str,
    held: H,
) -> impl Future<Output = ()> + Send {
    async move {
        let _held = &held;
        let mut buf = BytesMut::new();
        let mut first = true;
        // One timer for the connection's idle and response deadlines. Both
        // only move later from request to request, which tokio does with
        // one atomic store; a timer made per wait is registered in the
        // timer wheel and removed again, under its lock, every time.
        let mut timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        loop {
            let snapshot = server.snapshot();
            let settings = &snapshot.config.server;
            let (idle_timeout, header_timeout) = (settings.idle_timeout, settings.header_timeout);
            let max_head = usize::try_from(settings.max_header_size).unwrap_or(usize::MAX);
            drop(snapshot);

            if buf.is_empty() {
                // Idle: give the buffer back and wait for the next request.
                spare::give(Spare::Read, std::mem::take(&mut buf));
                if !Idle::new(&io, timer.as_mut(), idle_timeout, &server, first).await {
                    return;
                }
            }

            // Read until the head is complete, within the header timeout. The
            // clock is read, and the timeout armed, only for a read that waits.
            let mut deadline = None;
            let head = loop {
                // Decided before awaiting: a `Parsed` kept alive across the
                // hand-over would make every connection's state larger.
                let unusual = match head::parse_request(&mut buf, max_head) {
                    Parsed::Head(head) => break head,
                    Parsed::Unusual => true,
                    Parsed::Partial => false,
                };
                if unusual {
                    return Box::pin(handoff(io, buf, peer, server, scheme)).await;
                }
                if buf.capacity() == 0 {
                    buf = spare::take(Spare::Read);
                } else if buf.capacity() - buf.len() < 1024 {
                    buf.reserve(READ_BUFFER.max(buf.len()));
                }
                let read = io.read_buf(&mut buf);
                tokio::pin!(read);
                let read = match (deadline, now_or_pending(read.as_mut()).await) {
                    (_, Some(read)) => Ok(read),
                    (Some(deadline), None) => tokio::time::timeout_at(deadline, read).await,
                    (None, None) => {
                        let at = tokio::time::Instant::now() + header_timeout;
                        deadline = Some(at);
                        tokio::time::timeout_at(at, read).await
                    }
                };
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(_)) => {}
                    Err(_) => {
                        tracing::debug!(peer = %peer, "request head not complete within header_timeout; closing");
                        return;
                    }
                }
            };

            first = false;
            // A body may still be coming when the connection closes after
            // the answer (an upstream that answered before reading it).
            let body = head.content_length > 0;
            let closing = server.closing();
            // Boxed: an idle connection then holds only this loop's small
            // state, not a request's. Built by a plain function so nothing of
            // the request but the box lives in this loop's state.
            let next = match relaying(
                &mut io,
                &mut buf,
                head,
                (peer, scheme),
                &server,
                closing,
                timer.as_mut(),
            ) {
                Ok(relay) => relay.await,
                Err(whole) => Next::Handoff(whole),
            };
            match next {
                Next::Request => {}
                Next::Close => {
                    let unread = body || !buf.is_empty();
                    spare::give(Spare::Read, buf);
                    return Box::pin(close(io, unread)).await;
                }
                Next::Handoff(whole) => {
                    return Box::pin(handoff(io, whole, peer, server, scheme)).await
                }
            }
        }
    }
}

/// Polls `future` once: its output if it is ready now, else `None` (the
/// future can then be awaited further). Lets a timeout be armed, and the
/// clock read, only for operations that actually have to wait.
pub(crate) async fn now_or_pending<F: Future + ?Sized>(
    mut future: Pin<&mut F>,
) -> Option<F::Output> {
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// What the connection does after a request.
pub(crate) enum Next {
    /// Read the next request.
    Request,
    Close,
    /// Let hyper serve the connection from these bytes on.
    Handoff(BytesMut),
}

/// The boxed answer to one parsed request (relayed to an upstream, or a
/// kept static file), or, when hyper must serve it, the bytes to hand
/// over (the head put back in front of what follows).
/// `timer` is the connection's, for the response deadline.
fn relaying<'a, S: Transport>(
    io: &'a mut S,
    buf: &'a mut BytesMut,
    head: head::RequestHead,
    (peer, scheme): (SocketAddr, &'static str),
    server: &Server,
    closing: bool,
    timer: Pin<&'a mut tokio::time::Sleep>,
) -> Result<impl Future<Output = Next> + 'a, BytesMut> {
    let snapshot = server.snapshot();
    let Some((site, destination)) = relayable(&head, &snapshot, server, scheme) else {
        let mut whole = BytesMut::from(&head.raw[..]);
        whole.extend_from_slice(buf);
        return Err(whole);
    };
    let hsts = match scheme {
        "https" => server.tls.policy().hsts.clone(),
        _ => None,
    };
    let context = exchange::Context {
        client: Client { peer, scheme },
        site,
        hsts,
        idle_timeout: snapshot.config.server.idle_timeout,
        closing,
        snapshot,
    };
    let usable = |usable: bool| if usable { Next::Request } else { Next::Close };
    // Each future goes straight into its own box: wrapped first (in the
    // `Either`, in `map`), the kilobytes of the relay's state would be
    // copied once more on the way.
    Ok(match destination {
        Destination::Upstream(target) => {
            let relay = Box::pin(exchange::relay(io, buf, head, target, context, timer));
            Either::Left(relay.map(usable))
        }
        Destination::Kept(kept) => {
            Either::Right(Box::pin(kept::answer(io, buf, head, kept, context)))
        }
    })
}

/// Closes the connection after the last response (TLS: close_notify),
/// lingering while the client is still sending (`conn::linger`); `unread`:
/// it may be, whether or not its bytes are in the socket yet.
async fn close<S: Transport>(mut io: S, unread: bool) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::io::AsyncWriteExt::shutdown(&mut io),
    )
    .await;
    let (socket, left) = io.into_tcp();
    conn::linger::close(socket, unread || left);
}

pin_project_lite::pin_project! {
    /// Waits for the next request on an idle connection: true when bytes
    /// (or EOF) arrived, false after the idle timeout or when wharf shuts
    /// down. A future of its own rather than an `async fn` around
    /// `select!`, and waiting on a `Notify` rather than a `watch`
    /// receiver: every idle connection holds this state (about 200 bytes
    /// instead of 320). `first`: no request was read yet.
    struct Idle<'a, S> {
        io: &'a S,
        server: &'a Server,
        sleep: Pin<&'a mut tokio::time::Sleep>,
        #[pin]
        closing: tokio::sync::futures::Notified<'a>,
        first: bool,
    }
}

impl<'a, S: Transport> Idle<'a, S> {
    /// Waits on `sleep`, the connection's timer, set `timeout` from now.
    fn new(
        io: &'a S,
        mut sleep: Pin<&'a mut tokio::time::Sleep>,
        timeout: Duration,
        server: &'a Server,
        first: bool,
    ) -> Self {
        sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
        Idle {
            io,
            server,
            sleep,
            // Made before the flag is read (in `poll`), so a shutdown
            // that begins in between still completes it.
            closing: server.closing_notified(),
            first,
        }
    }
}

impl<S: Transport> Future for Idle<'_, S> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<bool> {
        let this = self.project();
        if this.server.closing() {
            return Poll::Ready(false);
        }
        // A new socket can look readable before its first byte; a buffer
        // taken then would be held for nothing.
        let ready = if *this.first {
            this.io.poll_has_data(cx)
        } else {
            this.io.poll_read_ready(cx)
        };
        if ready.is_ready() {
            return Poll::Ready(true);
        }
        if this.sleep.as_mut().poll(cx).is_ready() || this.closing.poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Pending
    }
}

/// Where a relayable request goes.
pub(crate) struct Target {
    pub pool: Arc<crate::balance::Pool>,
    pub metrics: crate::observe::metrics::RouteMetrics,
    /// `strip_prefix`: the route's path, taken off the request's.
    pub strip: Option<Arc<str>>,
    /// The route's `[site.route.headers]`.
    pub headers: Option<Arc<crate::route::headers::RouteHeaders>>,
}

/// What answers a request on the fast path.
enum Destination {
    Upstream(Target),
    Kept(kept::Kept),
}

/// The site and what answers `head` on the fast path, or `None` when the
/// general path must: ACME challenges and the HTTPS redirect, unknown
/// hosts, sites with CORS, routes that neither proxy nor serve files,
/// bodies over the limit, static requests a kept file cannot answer.
fn relayable(
    head: &head::RequestHead,
    snapshot: &crate::snapshot::Snapshot,
    server: &Server,
    scheme: &str,
) -> Option<(usize, Destination)> {
    let host = head.host();
    // Checked as UTF-8 once, not for each use.
    let path = head.path();
    if scheme == "http" && tls::answers_plain_http(path, host, &server.tls) {
        return None;
    }
    let site = snapshot.hosts.lookup(host)?;
    let routes = snapshot.fast.get(site)?.as_ref()?;
    let matched = routes.table.lookup(path)?;
    let route = matched.value;
    // Only the general path checks credentials.
    if route.auth.is_some() {
        return None;
    }
    let destination = match &route.action {
        Action::Proxy { pool, strip } if head.content_length <= routes.max_body_size => {
            Destination::Upstream(Target {
                pool: pool.clone(),
                metrics: route.metrics.clone(),
                strip: strip.clone(),
                headers: route.headers.clone(),
            })
        }
        Action::Static(files) if head.method == http::Method::GET && head.content_length == 0 => {
            let fields = || {
                head.fields
                    .iter()
                    .map(|field| (head.name(field), head.value(field)))
            };
            Destination::Kept(kept::Kept {
                files: files.clone(),
                key: files.kept_key(matched.rest, fields)?,
                metrics: route.metrics.clone(),
            })
        }
        _ => return None,
    };
    Some((site, destination))
}

async fn handoff<S: Transport>(
    io: S,
    buf: BytesMut,
    peer: SocketAddr,
    server: Arc<Server>,
    scheme: &'static str,
) {
    let io = prefixed::Prefixed::new(buf.freeze(), io);
    conn::serve_hyper(io, peer, server, scheme).await
}
