//! Observability: wharf's own logs, the access log, request ids and trace
//! context, metrics, and the admin API with its status page.
//!
//! The request path touches only `trace` (ids), `metrics` (pre-built
//! handles) and `request` (recording when the response ends); everything
//! else runs when the admin API is asked.

pub mod access;
pub mod admin;
pub mod handles;
pub mod history;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod request;
pub mod scrape;
pub mod sources;
pub mod status;
pub mod totals;
pub mod trace;
