//! Idle tracking for connections served by hyper: a stream wrapper that
//! stamps the time of every read and write ([`Tracked`]), the cheap clock
//! it stamps with ([`now_ms`]), and the wait that ends once nothing has
//! moved for `idle_timeout` ([`idle`]). It only measures; closing the
//! connection (gracefully) is `serve_hyper`'s, and when hyper lets go of
//! the stream, [`Tracked`] closes its socket through `linger::close`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{linger, Transport};

/// What a connection served by hyper shares between its stream, its
/// requests and `serve_hyper`.
pub(super) struct Activity {
    /// When bytes last moved (`now_ms`).
    last: AtomicU64,
    /// Whether the last request came with a body, which may still be
    /// arriving when the connection closes (`linger`).
    body: AtomicBool,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            last: AtomicU64::new(now_ms()),
            body: AtomicBool::new(false),
        }
    }

    /// Called as each request begins.
    pub(super) fn request(&self, has_body: bool) {
        self.body.store(has_body, Ordering::Relaxed);
    }
}

/// Completes once nothing was read or written for `timeout`.
pub(super) async fn idle(activity: &Activity, timeout: Duration) {
    loop {
        let last = activity.last.load(Ordering::Relaxed);
        let idle_for = Duration::from_millis(now_ms().saturating_sub(last));
        if idle_for >= timeout {
            return;
        }
        tokio::time::sleep(timeout - idle_for).await;
    }
}

/// Milliseconds since wharf started; a cheap clock for idle tracking.
pub(super) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// An IO stream that records when it last moved bytes, and closes its
/// socket lingering (`linger::close`) when dropped.
pub(super) struct Tracked<S: Transport> {
    /// Taken only when dropped.
    inner: Option<S>,
    activity: Arc<Activity>,
}

impl<S: Transport> Tracked<S> {
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked {
            inner: Some(inner),
            activity,
        }
    }

    fn touch(&self) {
        self.activity.last.store(now_ms(), Ordering::Relaxed);
    }

    fn io(&mut self) -> std::io::Result<Pin<&mut S>> {
        match self.inner.as_mut() {
            Some(inner) => Ok(Pin::new(inner)),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected)),
        }
    }
}

impl<S: Transport> Drop for Tracked<S> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let (socket, unread) = inner.into_tcp();
            let body = self.activity.body.load(Ordering::Relaxed);
            linger::close(socket, unread || body);
        }
    }
}

impl<S: Transport> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = match self.io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(error) => return Poll::Ready(Err(error)),
        };
        if polled.is_ready() {
            self.touch();
        }
        polled
    }
}

impl<S: Transport> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = match self.io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(error) => return Poll::Ready(Err(error)),
        };
        if polled.is_ready() {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = match self.io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(error) => return Poll::Ready(Err(error)),
        };
        if polled.is_ready() {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(S::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}
