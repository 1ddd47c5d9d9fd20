//! `Upgrade` (WebSocket and friends): detect the request, then after the
//! upstream answers 101 join the two upgraded connections byte for byte.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::balance::state::InFlight;

/// The protocol asked for, when this is an HTTP/1.1 upgrade request
/// (`Connection: upgrade` plus `Upgrade: ...`).
pub fn requested<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

/// Spawns the tunnel; it ends when either side closes.
pub fn tunnel(client: OnUpgrade, upstream: OnUpgrade, server: SocketAddr, in_flight: InFlight) {
    tokio::spawn(async move {
        // The server stays busy (least_conn) while the tunnel is open.
        let _in_flight = in_flight;
        let (client, upstream) = tokio::join!(client, upstream);
        match (client, upstream) {
            (Ok(client), Ok(upstream)) => {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    tracing::debug!(server = %server, error = %error, "upgraded connection ended with an error");
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(server = %server, error = %error, "upgrade failed");
            }
        }
    });
}
