//! wharf: one binary to put a web app on a server.
//!
//! See ARCHITECTURE.md for the path of a request and of a reload.

pub mod balance;
pub mod body;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod echo;
pub mod encode;
pub mod export;
pub mod fd_limit;
pub mod files;
pub mod h1;
pub mod observe;
pub mod proxy;
pub mod response;
pub mod route;
pub mod server;
pub mod site;
pub mod snapshot;
pub mod supervise;
pub mod tls;
