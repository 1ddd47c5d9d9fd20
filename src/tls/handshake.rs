//! The TLS handshake of an accepted connection, and the rustls settings
//! that keep it cheap for both ends.
//!
//! In: a TCP stream from an HTTPS listener. Out: the TLS stream for
//! `server/conn.rs`, or `None` when the handshake failed, timed out, or was
//! an ACME TLS-ALPN-01 validation (which ends with the handshake).
//!
//! Why the settings (measured with `bench/run.sh`, `handshake-64`, where
//! the client's CPU is what limits the rate):
//! - Cipher suites in the server's order, AES-128-GCM with SHA-256 first.
//!   Most clients list AES-256-GCM-SHA384 first, which puts SHA-384 in every
//!   step of the TLS 1.3 key schedule on both ends; SHA-256 runs on the
//!   SHA extensions of current CPUs and SHA-384 does not. A client that lists
//!   ChaCha20 before any AES-GCM suite says it has no AES hardware, and keeps
//!   its own order (what Go's crypto/tls, and so Caddy, do).
//! - One TLS 1.3 session ticket per handshake instead of rustls's two:
//!   each ticket is a message the client has to process and store, and a
//!   client that reconnects uses one ticket and gets a new one each time.
//! - Stateless TLS 1.3 tickets (rustls's ring `Ticketer`: ChaCha20-Poly1305
//!   under a random key that changes every 6 hours): any number of returning
//!   clients resume, where a session cache resumes only the last ones it
//!   holds. nginx and Caddy also issue stateless tickets by default. The
//!   cache stays for TLS 1.2 clients that resume by session id, and for
//!   TLS 1.3 if the system's random source failed when the ticket key was
//!   made.
//!
//! Must not: block, or take longer than the timeout it is given.

use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::{CipherSuite, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::resolver::ACME_TLS_ALPN;

/// TLS 1.3 tickets sent after each handshake.
const TICKETS: usize = 1;

/// Sessions the cache holds, for TLS 1.2 clients that resume by session id.
const CACHED_SESSIONS: usize = 256;

/// The two server configs a handshake chooses between; they share the
/// certificate resolver, the ticket key and the session cache, so a
/// session resumes under either.
pub(super) struct Handshake {
    /// Suites in the server's order: AES-128-GCM first.
    preferred: Arc<ServerConfig>,
    /// Suites in the client's order, for clients that put ChaCha20 first.
    client_order: Arc<ServerConfig>,
}

impl Handshake {
    pub(super) fn new(resolver: Arc<dyn ResolvesServerCert>) -> Handshake {
        let sessions = rustls::server::ServerSessionMemoryCache::new(CACHED_SESSIONS);
        let tickets = match rustls::crypto::ring::Ticketer::new() {
            Ok(ticketer) => Some(ticketer),
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    "could not make a TLS session ticket key; TLS 1.3 sessions resume \
                     from a cache of the last {CACHED_SESSIONS} instead"
                );
                None
            }
        };
        let stores = Stores { sessions, tickets };
        Handshake {
            preferred: Arc::new(config(resolver.clone(), &stores, true)),
            client_order: Arc::new(config(resolver, &stores, false)),
        }
    }

    /// The handshake on an accepted connection, within `timeout`.
    pub(super) async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Option<TlsStream<TcpStream>> {
        // Only for the debug lines below: skip the system call otherwise.
        let peer = if tracing::level_enabled!(tracing::Level::DEBUG) {
            stream.peer_addr().ok()
        } else {
            None
        };
        let handshake = async {
            let start =
                LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
            let config = match prefers_chacha(start.client_hello().cipher_suites()) {
                true => self.client_order.clone(),
                false => self.preferred.clone(),
            };
            start.into_stream(config).await
        };
        match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(tls)) => {
                if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
                    tracing::debug!(peer = ?peer, "answered a TLS-ALPN-01 validation");
                    return None;
                }
                Some(tls)
            }
            Ok(Err(error)) => {
                tracing::debug!(peer = ?peer, error = %error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(peer = ?peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// Where resumable sessions are kept, shared by both configs.
struct Stores {
    sessions: Arc<dyn StoresServerSessions>,
    tickets: Option<Arc<dyn ProducesTickets>>,
}

fn config(
    resolver: Arc<dyn ResolvesServerCert>,
    stores: &Stores,
    server_order: bool,
) -> ServerConfig {
    let mut provider = rustls::crypto::ring::default_provider();
    // Stable: TLS 1.3 and TLS 1.2 suites each keep their relative order.
    provider
        .cipher_suites
        .sort_by_key(|suite| preference(suite.suite()));
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    config.ignore_client_order = server_order;
    config.send_tls13_tickets = TICKETS;
    config.session_storage = stores.sessions.clone();
    if let Some(tickets) = &stores.tickets {
        config.ticketer = tickets.clone();
    }
    config
}

/// The server's order: AES-128-GCM (SHA-256), ChaCha20 (SHA-256), then
/// AES-256-GCM (SHA-384).
fn preference(suite: CipherSuite) -> u8 {
    match bulk(suite) {
        Some(Bulk::Aes128) => 0,
        Some(Bulk::ChaCha20) => 1,
        _ => 2,
    }
}

/// Whether the client's first AEAD suite we know is ChaCha20 (skipping
/// GREASE values and suites rustls does not offer).
fn prefers_chacha(offered: &[CipherSuite]) -> bool {
    offered.iter().find_map(|suite| bulk(*suite)) == Some(Bulk::ChaCha20)
}

#[derive(Debug, PartialEq, Eq)]
enum Bulk {
    Aes128,
    Aes256,
    ChaCha20,
}

fn bulk(suite: CipherSuite) -> Option<Bulk> {
    use CipherSuite::*;
    match suite {
        TLS13_AES_128_GCM_SHA256
        | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(Bulk::Aes128),
        TLS13_AES_256_GCM_SHA384
        | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(Bulk::Aes256),
        TLS13_CHACHA20_POLY1305_SHA256
        | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(Bulk::ChaCha20),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CipherSuite::*;

    #[test]
    fn server_order_puts_sha256_suites_first() {
        let mut suites = rustls::crypto::ring::default_provider().cipher_suites;
        suites.sort_by_key(|suite| preference(suite.suite()));
        let tls13: Vec<CipherSuite> = suites
            .iter()
            .filter(|suite| suite.tls13().is_some())
            .map(|suite| suite.suite())
            .collect();
        assert_eq!(
            tls13,
            [
                TLS13_AES_128_GCM_SHA256,
                TLS13_CHACHA20_POLY1305_SHA256,
                TLS13_AES_256_GCM_SHA384
            ]
        );
    }

    #[test]
    fn a_client_listing_chacha_first_keeps_its_order() {
        // GREASE and unknown values before it do not count.
        assert!(prefers_chacha(&[
            CipherSuite::Unknown(0x0a0a),
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS13_AES_128_GCM_SHA256,
        ]));
        // OpenSSL's default order.
        assert!(!prefers_chacha(&[
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS13_AES_128_GCM_SHA256,
        ]));
        assert!(!prefers_chacha(&[]));
    }
}
