//! Listening sockets: binding (with a clear message when the port is taken)
//! and the accept loop that hands each connection to `conn::serve`, or to
//! `conn::serve_https` (TLS handshake first) on HTTPS listeners, which
//! accept a connection once its ClientHello is there (`defer_accept`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{conn, holder, Server};

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}{}; {fix}", holder_text(.holder))]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
    pub holder: Option<String>,
    pub fix: &'static str,
}

fn holder_text(holder: &Option<String>) -> String {
    match holder {
        Some(who) => format!(" (it is held by {who})"),
        None => String::new(),
    }
}

/// Binds `addr`, explaining failures.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let bound = std::net::TcpListener::bind(addr).and_then(|listener| {
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    });
    bound.map_err(|source| {
        let (holder, fix) = match source.kind() {
            std::io::ErrorKind::AddrInUse => (
                holder::find(addr.port()),
                "stop the process holding it or choose another port in server.listen or server.https (or set PORT)",
            ),
            std::io::ErrorKind::PermissionDenied => (
                None,
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port above 1024 or grant the capability",
            ),
            std::io::ErrorKind::AddrNotAvailable => {
                (None, "that address is not on this machine; use 0.0.0.0 or one of its addresses")
            }
            _ => (None, "check server.listen and server.https"),
        };
        BindError {
            addr,
            source,
            holder,
            fix,
        }
    })
}

/// A running accept loop; dropping the handle stops it (open connections
/// carry on until they finish).
pub struct Handle {
    pub local: SocketAddr,
    /// Whether this listener speaks TLS.
    pub https: bool,
    _stop: watch::Sender<()>,
}

/// Starts accepting plain HTTP on `listener`.
pub fn spawn(listener: TcpListener, server: Arc<Server>) -> Handle {
    spawn_loop(listener, server, false)
}

/// Starts accepting HTTPS on `listener`.
pub fn spawn_https(listener: TcpListener, server: Arc<Server>) -> Handle {
    defer_accept(&listener);
    spawn_loop(listener, server, true)
}

/// Has the kernel hand over an HTTPS connection only once its first bytes
/// (the TLS ClientHello) have arrived, like nginx's `listen ... deferred`:
/// the handshake then starts with a read that succeeds, instead of a read
/// that would block, a wait and a wake-up per connection. A client that
/// sends nothing is accepted anyway after about a second and then meets the
/// handshake timeout as before. Linux only; elsewhere nothing changes.
#[cfg(target_os = "linux")]
fn defer_accept(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let seconds: libc::c_int = 1;
    // SAFETY: setsockopt on a descriptor `listener` keeps open for the whole
    // call, with a pointer to a live c_int and that c_int's size.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&seconds).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        // Only a little slower without it.
        tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_DEFER_ACCEPT not set");
    }
}

#[cfg(not(target_os = "linux"))]
fn defer_accept(_listener: &TcpListener) {}

fn spawn_loop(listener: TcpListener, server: Arc<Server>, https: bool) -> Handle {
    let (stop_tx, mut stop_rx) = watch::channel(());
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    if https {
        tracing::info!(addr = %local, "listening for HTTPS");
    } else {
        tracing::info!(addr = %local, "listening");
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) if https => {
                        tokio::spawn(conn::serve_https(stream, peer, server.clone()));
                    }
                    Ok((stream, peer)) => {
                        tokio::spawn(conn::serve(stream, peer, server.clone()));
                    }
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(addr = %local, error = %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stop_rx.changed() => break,
            }
        }
        tracing::info!(addr = %local, "stopped listening");
    });
    Handle {
        local,
        https,
        _stop: stop_tx,
    }
}
