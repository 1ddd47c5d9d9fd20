//! What the connection loop hands the exchange of one request: the
//! client, the snapshot and site it was routed in, and the deadlines.

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;

use crate::h1::Client;
use crate::snapshot::Snapshot;

/// What the connection loop passes in. Owned, so the request's future
/// is built straight into its box (a wrapper future borrowing these would
/// hold the relay future twice over).
pub(crate) struct Context {
    pub client: Client,
    pub snapshot: Arc<Snapshot>,
    pub site: usize,
    pub hsts: Option<HeaderValue>,
    /// Longest wait for the client to send or take bytes.
    pub idle_timeout: Duration,
    /// wharf is shutting down: close after this response.
    pub closing: bool,
}

impl Context {
    /// The site's `error_pages`, for wharf's own error answers.
    pub(crate) fn error_pages(&self) -> Option<&crate::site::error_pages::ErrorPages> {
        let routes = self.snapshot.fast.get(self.site)?.as_ref()?;
        routes.error_pages.as_deref()
    }
}
