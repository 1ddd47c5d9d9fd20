//! Keep-alive connections to one upstream server, reused across requests
//! and reloads (they live in the server's `ServerState`).
//!
//! Built directly on hyper's HTTP/1.1 client connection: a request takes an
//! idle connection (or opens one within the connect timeout) and gives it
//! back when the response body has been read to the end. Nothing is spawned
//! per request, and the caller learns exactly whether the request could
//! have reached the server: a failed connect or a pooled connection found
//! dead before sending are safe to retry; anything later may not be.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::body::Body;

/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections are kept per server.
const MAX_IDLE: usize = 256;

/// Idle connections to one server.
#[derive(Debug, Default)]
pub struct Idle {
    senders: Mutex<Vec<(SendRequest<Body>, Instant)>>,
}

/// Why a request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing was sent: the connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The request may have reached the server.
    #[error("request to {addr} failed: {source}")]
    Failed {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect { .. })
    }
}

/// A connection on loan to one request; back to the pool once the
/// response body is complete.
#[derive(Debug)]
pub struct Lease {
    sender: Option<SendRequest<Body>>,
    idle: Arc<super::super::balance::state::ServerState>,
}

impl Lease {
    /// Returns the connection for reuse (call only after the response body
    /// ended; an unfinished body would leave it busy).
    pub fn release(mut self) {
        if let Some(sender) = self.sender.take() {
            self.idle.connections.put(sender);
        }
    }
}

impl Idle {
    fn take(&self) -> Option<SendRequest<Body>> {
        let mut senders = match self.senders.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((sender, since)) = senders.pop() {
            if !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    fn put(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut senders = match self.senders.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if senders.len() < MAX_IDLE {
            senders.push((sender, Instant::now()));
        }
    }
}

/// Opens a new connection to `addr`.
async fn connect(addr: SocketAddr, timeout: Duration) -> Result<SendRequest<Body>, SendError> {
    let connect_error = |source| SendError::Connect { addr, source };
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| {
            connect_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            ))
        })?
        .map_err(connect_error)?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connect_error(std::io::Error::other(e)))?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(server = %addr, error = %error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// Sends `request` to the server of `state`, on an idle connection when
/// there is one. A pooled connection that turns out to be closed before
/// the request was written is replaced transparently.
pub async fn send(
    state: &Arc<super::super::balance::state::ServerState>,
    mut request: Request<Body>,
    connect_timeout: Duration,
) -> Result<(Response<Incoming>, Lease), SendError> {
    let addr = state.addr;
    loop {
        let (mut sender, pooled) = match state.connections.take() {
            Some(sender) => (sender, true),
            None => (connect(addr, connect_timeout).await?, false),
        };
        if pooled && sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(request).await {
            Ok(response) => {
                let lease = Lease {
                    sender: Some(sender),
                    idle: state.clone(),
                };
                return Ok((response, lease));
            }
            Err(mut error) => match error.take_message() {
                // Not written: the server closed the idle connection first.
                Some(unsent) if pooled => request = unsent,
                _ => {
                    return Err(SendError::Failed {
                        addr,
                        source: error.into_error(),
                    })
                }
            },
        }
    }
}
