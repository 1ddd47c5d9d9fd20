//! Graceful shutdown: open client connections counted, the signal that
//! tells listeners and connections to stop, and the wait for them up to
//! `shutdown_timeout` before supervised apps are stopped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::{lock, Server};

/// Counts open client connections so shutdown can wait for them.
#[derive(Default)]
pub struct Connections {
    open: AtomicUsize,
    all_closed: Notify,
}

/// One open connection, counted until dropped. It owns its handle, so a
/// connection's future holds it without borrowing the server.
pub struct ConnectionGuard(Arc<Connections>);

impl Connections {
    pub(super) fn enter(self: &Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    async fn wait_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

impl Server {
    /// A receiver that changes when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether shutdown has begun.
    pub fn closing(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Completes when shutdown begins after this was called; check
    /// [`Server::closing`] once it exists, for a shutdown that began before.
    pub fn closing_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.closing.notified()
    }

    /// Stops accepting, asks every connection to finish, and waits up to
    /// `shutdown_timeout`. Returns the number of connections cut off.
    pub async fn shutdown(&self) -> usize {
        let timeout: Duration = self.snapshot().config.server.shutdown_timeout;
        self.shutdown.send_replace(true);
        self.closing.notify_waiters();
        lock(&self.listeners).clear();
        tracing::info!(open_connections = self.connections.open(), timeout = ?timeout, "shutting down");
        let mut left = 0;
        if tokio::time::timeout(timeout, self.connections.wait_closed())
            .await
            .is_err()
        {
            left = self.connections.open();
            tracing::warn!(
                open_connections = left,
                "shutdown timeout reached; closing the rest"
            );
        }
        // Apps stop last: in-flight requests to them have finished above.
        self.supervisor.stop_all().await;
        left
    }
}
