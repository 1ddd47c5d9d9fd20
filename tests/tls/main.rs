//! HTTPS: certificates from the real ACME test server Pebble (HTTP-01 and
//! TLS-ALPN-01), renewal served live, the CA going away and coming back,
//! restart without a new order, the HTTP→HTTPS redirect, HSTS, the local
//! CA, files mode hot reload, and `wharf check` on `[tls]`.
//!
//! Pebble (Debian package `pebble`, installed by scripts/test) validates on
//! wharf's listeners: each test picks free ports for wharf's HTTP and HTTPS
//! listeners and writes them into Pebble's config as httpPort/tlsPort.
//! `pebble-challtestsrv` is Pebble's DNS server and answers 127.0.0.1 for
//! every name. Pebble's own HTTPS certificate is made here with rcgen.
//! Tests that need Pebble fail, loudly, when it is not installed.

#[path = "../support/mod.rs"]
mod support;

mod acme;
mod client;
mod handshake;
mod local;
mod pebble;
mod trust;
mod uploads;
