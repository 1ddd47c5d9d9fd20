//! Keep-alive TCP connections to one upstream server, kept in the
//! server's `ServerState` (so they survive reloads) and shared by the fast
//! path and the general path (`proxy::pool`, which runs hyper's client on
//! them one request at a time, and `h1::client`, one request at a time too).
//!
//! A connection is taken for one request and put back only once its
//! response was read to the end. Before reuse, a connection the server
//! already closed (a FIN or stray bytes waiting) is dropped.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections are kept per server.
const MAX_IDLE: usize = 1024;

/// Idle connections to one server.
#[derive(Debug, Default)]
pub struct Idle {
    streams: Mutex<Vec<(TcpStream, Instant)>>,
}

impl Idle {
    /// The most recently used live connection, if any; `now` is the
    /// caller's clock reading.
    pub fn take(&self, now: Instant) -> Option<TcpStream> {
        let mut streams = match self.streams.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((stream, since)) = streams.pop() {
            if now.saturating_duration_since(since) < IDLE_TIMEOUT && still_open(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps `stream`, idle since `since`, for the next request.
    pub fn put(&self, stream: TcpStream, since: Instant) {
        let mut streams = match self.streams.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if streams.len() < MAX_IDLE {
            streams.push((stream, since));
        }
    }

    /// Closes the connections idle for `IDLE_TIMEOUT` by `now`, and those
    /// the server closed meanwhile (which would otherwise wait in
    /// `CLOSE_WAIT` until traffic came back). Returns how many it closed.
    pub fn sweep(&self, now: Instant) -> usize {
        let closed: Vec<TcpStream> = {
            let mut streams = match self.streams.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut closed = Vec::new();
            let mut kept = Vec::with_capacity(streams.len());
            for (stream, since) in streams.drain(..) {
                if now.saturating_duration_since(since) < IDLE_TIMEOUT && still_open(&stream) {
                    kept.push((stream, since));
                } else {
                    closed.push(stream);
                }
            }
            *streams = kept;
            closed
        };
        // Closed outside the lock.
        closed.len()
    }

    /// How many connections are idle now.
    pub fn len(&self) -> usize {
        match self.streams.lock() {
            Ok(guard) => guard.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An idle connection has nothing to read: EOF or bytes mean the server
/// closed it or broke the protocol. The event loop already tracks that
/// for every registered socket, so this asks it rather than the kernel.
fn still_open(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    stream.poll_read_ready(&mut cx).is_pending()
}

/// Opens a connection to `addr` within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            )
        })??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
