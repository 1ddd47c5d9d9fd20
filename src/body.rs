//! The one response/request body type that flows through wharf, and small
//! constructors for it.
//!
//! Upstream bodies, static files and wharf's own answers are all boxed into
//! [`Body`] so the server, the CORS and compression layers and the access log
//! handle a single type. Boxing costs one allocation per body; streaming is
//! kept (nothing here buffers).

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// Error type carried by bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response wharf sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes` in memory (wharf's own small answers).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}
