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

/// How many connections the kernel may hold that wharf has not accepted yet
/// (capped by `net.core.somaxconn`, 4096 by default on current kernels).
/// nginx asks for 511, Go (Caddy) for `somaxconn`; the standard library's
/// 128 fills in a burst of new connections, and the kernel then drops their
/// SYNs, so those clients wait a second or more to retry.
const BACKLOG: u32 = 4096;

/// Binds `addr`, explaining failures.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let bound = (|| {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As the standard library does: a restarted wharf can bind its
        // port while old connections are still in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)
    })();
    bound.map_err(|source| {
        let (holder, fix) = match source.kind() {
            std::io::ErrorKind::AddrInUse => (
                holder::find(addr.port()),
                // The address may be written out or come from ${PORT}; only
                // the config knows, so PORT is named for the second case.
                "stop the process holding it, or choose another port for this address in the config (where it is written with ${PORT}, as the default server.listen is, set PORT instead)",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of connections that wharf has not accepted yet waits in the
    /// kernel's queue instead of losing its SYNs (with the standard
    /// library's backlog of 128 the rest would wait a second to retry).
    #[tokio::test]
    async fn a_burst_of_300_connections_is_queued_not_dropped() {
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if somaxconn.is_some_and(|max| max < 300) {
            eprintln!("skipped: net.core.somaxconn is below 300");
            return;
        }
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connects = (0..300).map(|_| {
            tokio::time::timeout(
                Duration::from_millis(700),
                tokio::net::TcpStream::connect(addr),
            )
        });
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(connected, 300, "connections completed before any accept");
        drop(listener);
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_with_a_fix() {
        let first = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
        let addr = first.local_addr().expect("addr");
        let error = bind(addr).expect_err("second bind of the same port");
        assert_eq!(error.source.kind(), std::io::ErrorKind::AddrInUse);
        assert!(error.to_string().contains("choose another port"), "{error}");
    }
}
