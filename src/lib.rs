//! wharf: one binary to put a web app on a server.
//!
//! See ARCHITECTURE.md for the path of a request and of a reload.

pub mod config;
pub mod body;
pub mod route;
pub mod balance;
pub mod proxy;
pub mod response;
pub mod files;
pub mod echo;
pub mod observe;
pub mod server;
pub mod site;
pub mod snapshot;
pub mod cli;
