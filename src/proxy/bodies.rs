//! The bodies `forward` passes on, each watched for a pause: the client's
//! request body, held whole to be replayable or streamed (a pause of the
//! body timeout is a 408), and the upstream's response body, which keeps
//! its server's in-flight count and pooled connection until it ends and
//! fails when the server stalls for its `response_timeout`.

use std::net::SocketAddr;

use http::{header, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::pool;
use crate::balance::state::InFlight;
use crate::body::{self, Body};

/// The request body, either held (replayable) or streaming (sent once).
pub(super) enum Payload {
    Held(bytes::Bytes),
    Streaming(Option<ClientBody>),
}

impl Payload {
    pub(super) fn take(&mut self, max_body_size: u64) -> Body {
        match self {
            Payload::Held(bytes) => body::full(bytes.clone()),
            Payload::Streaming(incoming) => match incoming.take() {
                Some(incoming) => body::boxed(
                    Limited::new(incoming, body_limit(max_body_size)).map_err(RequestBodyFailed),
                ),
                None => body::empty(),
            },
        }
    }

    pub(super) fn replayable(&self) -> bool {
        matches!(self, Payload::Held(_))
    }
}
pin_project_lite::pin_project! {
    /// An upstream response body that keeps its server's in-flight count
    /// until the body is finished or dropped, and fails when the server
    /// sends nothing for longer than its upstream's `response_timeout`.
    pub(super) struct Tracked {
        #[pin]
        pub(super) inner: pool::Upstream,
        pub(super) lease: Option<pool::Lease>,
        pub(super) _in_flight: InFlight,
        pub(super) stall: Stall,
        pub(super) server: SocketAddr,
    }
}

pin_project_lite::pin_project! {
    /// A client's request body that fails with [`ClientBodyTimedOut`] when
    /// nothing of it comes for the body timeout.
    pub(super) struct ClientBody {
        #[pin]
        inner: Incoming,
        stall: Stall,
    }
}

impl ClientBody {
    pub(super) fn new(inner: Incoming, timeout: std::time::Duration) -> ClientBody {
        ClientBody {
            inner,
            stall: Stall::new(timeout),
        }
    }
}

/// The client sent nothing more of its request body for the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing of its request body for {0:?} (server.idle_timeout)")]
pub(super) struct ClientBodyTimedOut(std::time::Duration);

impl http_body::Body for ClientBody {
    type Data = bytes::Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, body::BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if polled.is_pending() {
            return match this.stall.poll_waiting(cx) {
                std::task::Poll::Ready(BodyStalled(after)) => {
                    std::task::Poll::Ready(Some(Err(ClientBodyTimedOut(after).into())))
                }
                std::task::Poll::Pending => std::task::Poll::Pending,
            };
        }
        this.stall.progressed();
        polled.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The upstream sent nothing of a response body it had begun for longer
/// than its `response_timeout`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the upstream sent nothing of the response body for {0:?} (the upstream's response_timeout)"
)]
pub struct BodyStalled(std::time::Duration);

/// The deadline between two reads of an upstream body, as nginx's
/// `proxy_read_timeout` and the fast path's `read_timeout`: it runs only
/// while the body waits on the server, not while the client is slow to
/// take what was read. The timer is made the first time the body waits.
pub(super) struct Stall {
    timeout: std::time::Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// Whether `sleep` is set for the current wait.
    armed: bool,
}

impl Stall {
    pub(super) fn new(timeout: std::time::Duration) -> Stall {
        Stall {
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// The body gave something (or ended): the next wait starts afresh.
    fn progressed(&mut self) {
        self.armed = false;
    }

    /// The body is waiting on the server: `Ready` once it waited too long.
    fn poll_waiting(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<BodyStalled> {
        let timeout = self.timeout;
        let sleep = if self.armed {
            self.sleep.as_mut()
        } else {
            self.armed = true;
            let at = tokio::time::Instant::now() + timeout;
            match self.sleep.as_mut() {
                Some(sleep) => {
                    sleep.as_mut().reset(at);
                    Some(sleep)
                }
                None => Some(self.sleep.insert(Box::pin(tokio::time::sleep_until(at)))),
            }
        };
        match sleep {
            Some(sleep) => {
                std::future::Future::poll(sleep.as_mut(), cx).map(|()| BodyStalled(timeout))
            }
            None => std::task::Poll::Pending,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, body::BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        if polled.is_pending() {
            return match this.stall.poll_waiting(cx) {
                std::task::Poll::Ready(stalled) => {
                    tracing::warn!(server = %this.server, error = %stalled, "upstream body stalled");
                    // Dropped unreleased: the connection is closed.
                    this.lease.take();
                    std::task::Poll::Ready(Some(Err(stalled.into())))
                }
                std::task::Poll::Pending => std::task::Poll::Pending,
            };
        }
        this.stall.progressed();
        let ended = match &polled {
            std::task::Poll::Ready(None) => true,
            std::task::Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            if let Some(lease) = this.lease.take() {
                lease.release();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pub(super) fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn body_limit(max_body_size: u64) -> usize {
    usize::try_from(max_body_size).unwrap_or(usize::MAX)
}

/// The client's request body failed (malformed, cut off, or over
/// `max_body_size`) while it was streamed upstream: the client's fault,
/// so it neither counts against the server nor is answered with a 502.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body failed")]
pub(super) struct RequestBodyFailed(#[source] body::BoxError);
