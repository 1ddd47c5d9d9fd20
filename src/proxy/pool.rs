//! Requests of the general path to one upstream server, over the same idle
//! keep-alive connections as the HTTP/1.1 fast path (`h1::upstream::Idle`,
//! kept in the server's `ServerState`, so they survive reloads).
//!
//! A request without a body (nearly every `GET`), or with a small one held
//! whole, is exchanged on an idle
//! socket (or a new one, within the connect timeout) by `h1::client`,
//! without hyper's client (`send_bare`). Any other request takes a hot
//! hyper HTTP/1.1 client connection, or else an idle or new socket on
//! which it starts a client connection (`send`). When the response body
//! has been read to the end, the client connection is kept hot for the
//! next request. One idle for
//! `HOT_IDLE` is taken apart again and its bare socket goes back to the
//! shared pool: a hot connection holds a task and hyper's buffers, about
//! 40 KiB, and a burst of HTTP/2 streams (one upstream connection per
//! stream in flight) would otherwise leave hundreds of them behind for the
//! whole keep-alive time.
//!
//! The caller learns exactly whether the request could have reached the
//! server: a failed connect, or a pooled connection found dead before
//! anything was written, are safe to retry; anything later may not be.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{header, Request, Response, Version};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::balance::state::ServerState;
use crate::body::{Body, BoxError};
use crate::h1::client::{self, BareBody, ClientError};
use crate::h1::upstream;

/// A hot connection unused this long becomes a bare idle socket again.
const HOT_IDLE: Duration = Duration::from_secs(1);
/// How often hot connections are checked for that, while there are any.
const HOT_CHECK: Duration = Duration::from_millis(500);
/// At most this many hot connections are kept per server.
const MAX_HOT: usize = 1024;

/// Hot client connections to one server, most recently used last.
#[derive(Debug, Default)]
pub struct Hot {
    senders: Mutex<HotList>,
}

#[derive(Debug, Default)]
struct HotList {
    senders: Vec<(SendRequest<Body>, Arc<AtomicBool>, Instant)>,
    /// Whether a task is cooling this list down (see `cool`).
    cooling: bool,
}

impl Hot {
    fn lock(&self) -> std::sync::MutexGuard<'_, HotList> {
        match self.senders.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn take(&self) -> Option<(SendRequest<Body>, Arc<AtomicBool>)> {
        let mut list = self.lock();
        while let Some((sender, complete, _)) = list.senders.pop() {
            if !sender.is_closed() {
                return Some((sender, complete));
            }
        }
        None
    }
}

/// Keeps a released connection hot; starts the task that cools the list
/// down when none runs.
fn keep_hot(state: &Arc<ServerState>, sender: SendRequest<Body>, complete: Arc<AtomicBool>) {
    if sender.is_closed() {
        return;
    }
    let start_cooling = {
        let mut list = state.hot.lock();
        if list.senders.len() >= MAX_HOT {
            // Dropping the sender ends the connection; `drive` keeps
            // its socket.
            return;
        }
        list.senders.push((sender, complete, Instant::now()));
        !std::mem::replace(&mut list.cooling, true)
    };
    if start_cooling {
        tokio::spawn(cool(state.clone()));
    }
}

/// Turns hot connections unused for `HOT_IDLE` back into bare sockets,
/// until none is left hot.
async fn cool(state: Arc<ServerState>) {
    loop {
        tokio::time::sleep(HOT_CHECK).await;
        let (cold, left): (Vec<_>, bool) = {
            let mut list = state.hot.lock();
            // Least recently used first: the cold ones are a prefix.
            let now = Instant::now();
            let count = list
                .senders
                .iter()
                .take_while(|(_, _, since)| now.saturating_duration_since(*since) >= HOT_IDLE)
                .count();
            let cold = list.senders.drain(..count).collect();
            let left = !list.senders.is_empty();
            list.cooling = left;
            (cold, left)
        };
        // Dropped outside the lock: each ends its connection, whose
        // `drive` then gives the socket back.
        drop(cold);
        if !left {
            return;
        }
    }
}

/// Why a request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing was sent: the connection could not be made.
    // The source is not in the message: logs print the error's chain.
    #[error("cannot connect to {addr}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The request may have reached the server.
    #[error("request to {addr} failed")]
    Failed { addr: SocketAddr, source: BoxError },
}

/// A response body from an upstream server: through hyper's client, or
/// read from a bare socket by `h1::client`.
#[derive(Debug)]
pub enum Upstream {
    Hyper(Incoming),
    Bare(BareBody),
}

impl http_body::Body for Upstream {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        match self.get_mut() {
            Upstream::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Upstream::Bare(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Upstream::Hyper(body) => body.is_end_stream(),
            Upstream::Bare(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Upstream::Hyper(body) => body.size_hint(),
            Upstream::Bare(body) => body.size_hint(),
        }
    }
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect { .. })
    }
}

/// A connection on loan to one request; its socket goes back to the pool
/// once the response body is complete.
#[derive(Debug)]
pub struct Lease {
    sender: Option<SendRequest<Body>>,
    /// Set on release; `None` when the response said the connection
    /// closes (or it was upgraded), so it can never be reused.
    complete: Option<Arc<AtomicBool>>,
    state: Arc<ServerState>,
}

impl Lease {
    /// Gives the connection back for reuse (call only after the response
    /// body ended; an unfinished body would leave it busy). Dropping the
    /// lease instead closes the connection.
    pub fn release(mut self) {
        if let (Some(sender), Some(complete)) = (self.sender.take(), self.complete.take()) {
            complete.store(true, Ordering::Release);
            keep_hot(&self.state, sender, complete);
        }
    }
}

/// Sends a request without a body, or with a small one held whole, to the
/// server of `state` on a bare socket (`h1::client`), idle or new.
pub async fn send_bare(
    state: &Arc<ServerState>,
    head: client::Head<'_>,
    connect_timeout: Duration,
) -> Result<(Response<Upstream>, Lease), SendError> {
    let addr = state.addr;
    // Nothing to give back: the body puts the socket back itself.
    let lease = Lease {
        sender: None,
        complete: None,
        state: state.clone(),
    };
    match client::send(state, head, connect_timeout).await {
        Ok(response) => Ok((response.map(Upstream::Bare), lease)),
        Err(ClientError::Connect(source)) => Err(SendError::Connect { addr, source }),
        Err(error) => Err(SendError::Failed {
            addr,
            source: error.into(),
        }),
    }
}

/// Sends `request` to the server of `state` through hyper's client, on an
/// idle connection when there is one. A pooled connection that turns out
/// to be closed before the request was written is replaced transparently.
pub async fn send(
    state: &Arc<ServerState>,
    request: Request<Body>,
    connect_timeout: Duration,
) -> Result<(Response<Upstream>, Lease), SendError> {
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let (response, lease) = send_hyper(state, request, connect_timeout, upgrade).await?;
    let headers = response.headers();
    if headers.contains_key(header::TRANSFER_ENCODING)
        && headers.contains_key(header::CONTENT_LENGTH)
    {
        // A sign of response splitting (RFC 9112 6.3), refused as
        // `h1::client` and the fast path refuse it; hyper lets the
        // Transfer-Encoding win and keeps both. Dropped with its lease,
        // the connection closes.
        return Err(SendError::Failed {
            addr: state.addr,
            source: "the answer has both Content-Length and Transfer-Encoding".into(),
        });
    }
    let (mut codings, mut other) = (0, false);
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        crate::h1::count_codings(value.as_bytes(), &mut codings, &mut other);
    }
    if other || codings > 1 {
        // hyper decodes `chunked` only; the rest would reach the client
        // still coded, without the header that said so.
        return Err(SendError::Failed {
            addr: state.addr,
            source: "the answer has a transfer coding other than chunked alone".into(),
        });
    }
    Ok((response.map(Upstream::Hyper), lease))
}

/// `send` through hyper's HTTP/1.1 client.
async fn send_hyper(
    state: &Arc<ServerState>,
    mut request: Request<Body>,
    connect_timeout: Duration,
    upgrade: bool,
) -> Result<(Response<Incoming>, Lease), SendError> {
    let addr = state.addr;
    loop {
        // A hot connection is run without upgrades; an upgrade gets a
        // connection of its own.
        let hot = if upgrade { None } else { state.hot.take() };
        if let Some((mut sender, complete)) = hot {
            // Not complete again until this exchange is.
            complete.store(false, Ordering::Release);
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(leased(state, response, sender, Some(complete))),
                Err(mut error) => match error.take_message() {
                    // Not written: the connection closed while idle.
                    Some(unsent) => {
                        request = unsent;
                        continue;
                    }
                    None => {
                        return Err(SendError::Failed {
                            addr,
                            source: error.into_error().into(),
                        })
                    }
                },
            }
        }
        let pooled = state.idle.take(Instant::now());
        let reused = pooled.is_some();
        let stream = match pooled {
            Some(stream) => stream,
            None => upstream::connect(addr, connect_timeout)
                .await
                .map_err(|source| SendError::Connect { addr, source })?,
        };
        // The handshake of an HTTP/1.1 client does no I/O: it only sets
        // up the connection's state.
        let (mut sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| SendError::Connect {
                addr,
                source: std::io::Error::other(error),
            })?;
        let complete = if upgrade {
            tokio::spawn(async move {
                if let Err(error) = connection.with_upgrades().await {
                    tracing::debug!(server = %addr, error = %error, "upstream connection ended with an error");
                }
            });
            None
        } else {
            let complete = Arc::new(AtomicBool::new(false));
            tokio::spawn(drive(connection, complete.clone(), state.clone()));
            Some(complete)
        };
        match sender.try_send_request(request).await {
            Ok(response) => return Ok(leased(state, response, sender, complete)),
            Err(mut error) => match error.take_message() {
                // Not written: the server closed the idle connection first.
                Some(unsent) if reused => request = unsent,
                _ => {
                    return Err(SendError::Failed {
                        addr,
                        source: error.into_error().into(),
                    })
                }
            },
        }
    }
}

/// The response, and the lease that gives its connection back.
fn leased(
    state: &Arc<ServerState>,
    response: Response<Incoming>,
    sender: SendRequest<Body>,
    complete: Option<Arc<AtomicBool>>,
) -> (Response<Incoming>, Lease) {
    let complete = complete.filter(|_| keeps_alive(&response));
    let lease = Lease {
        sender: Some(sender),
        complete,
        state: state.clone(),
    };
    (response, lease)
}

/// Runs one client connection, for as many requests as it stays hot.
/// When it ends after a complete exchange, the socket goes back to the
/// pool.
async fn drive(
    connection: Connection<TokioIo<TcpStream>, Body>,
    complete: Arc<AtomicBool>,
    state: Arc<ServerState>,
) {
    match connection.without_shutdown().await {
        Ok(parts) => {
            // Bytes the server sent beyond its response would be taken
            // for the next response: such a connection is not reused.
            if complete.load(Ordering::Acquire) && parts.read_buf.is_empty() {
                state.idle.put(parts.io.into_inner(), Instant::now());
            }
        }
        Err(error) => {
            tracing::debug!(server = %state.addr, error = %error, "upstream connection ended with an error");
        }
    }
}

/// Whether the server keeps the connection open after `response`:
/// HTTP/1.1 unless it says `Connection: close`.
fn keeps_alive(response: &Response<Incoming>) -> bool {
    if response.version() != Version::HTTP_11 {
        return false;
    }
    !response
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}
