//! Observability: wharf's own logs, the access log and the admin API.

pub mod access;
pub mod admin;
pub mod logging;
