//! Header rewriting between client and upstream: forwarded headers in,
//! hop-by-hop headers out (both directions).
//!
//! Takes the client's header map and the connection facts (peer address,
//! scheme, whether the peer is a trusted proxy) and rewrites in place. It
//! must not trust anything a client says about itself unless the peer is in
//! `trusted_proxies`.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [HeaderName; HOP_COUNT] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// How many names [`HOP_BY_HOP`] has.
const HOP_COUNT: usize = 8;
/// Where `TE` is in [`HOP_BY_HOP`].
const TE_INDEX: usize = 5;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Removes hop-by-hop headers, including every header named in `Connection`
/// but `Content-Length`: sent on without it, the body would be read as the
/// next request (the fast path writes the head this rewrites as it is).
/// `Upgrade` is removed too; the caller puts it back for upgrade requests.
/// `TE: trailers` is kept, since gRPC needs it end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most requests carry none of these, and most responses only
    // `Connection: keep-alive`: one pass over the names finds which are
    // there, and only those are removed (each removal hashes its name).
    const UPGRADE_BIT: u16 = 1 << HOP_COUNT;
    const TE_BIT: u16 = 1 << TE_INDEX;
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(index) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present |= 1 << index;
        } else if name == header::UPGRADE {
            present |= UPGRADE_BIT;
        }
    }
    if present == 0 {
        return;
    }
    // Other headers `Connection` names. Its usual tokens (`close`,
    // `keep-alive`, `upgrade`) are not looked up: `keep-alive` and
    // `upgrade` are covered above, and a header named `close` is removed
    // when there is one.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| {
            !token.is_empty()
                && !token.eq_ignore_ascii_case("keep-alive")
                && !token.eq_ignore_ascii_case("upgrade")
                && !token.eq_ignore_ascii_case("content-length")
        })
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .filter(|name| headers.contains_key(name))
        .collect();
    for name in named {
        headers.remove(name);
    }
    let keep_te_trailers = present & TE_BIT != 0
        && headers
            .get(header::TE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            });
    for (index, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << index) != 0 {
            headers.remove(name);
        }
    }
    if present & UPGRADE_BIT != 0 {
        headers.remove(header::UPGRADE);
    }
    if keep_te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// What the proxy knows about the client connection.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether `peer` is in `trusted_proxies`.
    pub peer_trusted: bool,
    /// "http" or "https" as seen by wharf.
    pub scheme: &'static str,
    /// The Host the client asked for.
    pub host: Option<&'a HeaderValue>,
    /// `peer` rendered as a header value once per connection.
    pub peer_header: &'a HeaderValue,
}

/// Sets `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto` and
/// `X-Forwarded-Host`. From an untrusted peer every incoming value is
/// replaced, so a client cannot spoof its address; from a trusted proxy the
/// chain is extended and its proto/host are kept. `client_ip` is the address
/// wharf believes is the real client (see [`client_ip`]).
pub fn set_forwarded(headers: &mut HeaderMap, fwd: Forwarding<'_>, client_ip: IpAddr) {
    Forwarded::new(headers, fwd, client_ip).apply(headers);
}

/// The forwarded headers of one request, worked out from the incoming
/// headers without changing them: [`Forwarded::apply`] puts them in a
/// `HeaderMap`; a head writer (`h1::client`) instead leaves out the
/// incoming fields [`Forwarded::replaces`] names and writes
/// [`Forwarded::fields`].
#[derive(Debug)]
pub struct Forwarded {
    /// Each: `None` keeps what came (a trusted proxy's value); `Some(None)`
    /// removes it; `Some(Some(value))` replaces it.
    for_: Option<Option<HeaderValue>>,
    real_ip: Option<Option<HeaderValue>>,
    proto: Option<Option<HeaderValue>>,
    host: Option<Option<HeaderValue>>,
    /// Whether an incoming RFC 7239 `Forwarded` is removed: it says as
    /// much as `X-Forwarded-*` and is believed only from a trusted proxy.
    /// wharf writes none of its own, as nginx and Caddy do not.
    drop_forwarded: bool,
}

impl Forwarded {
    pub fn new(headers: &HeaderMap, fwd: Forwarding<'_>, client_ip: IpAddr) -> Forwarded {
        let previous: Vec<&str> = if fwd.peer_trusted {
            headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        } else {
            Vec::new()
        };
        let for_ = if previous.is_empty() {
            Some(Some(fwd.peer_header.clone()))
        } else {
            let peer = fwd.peer.to_string();
            HeaderValue::from_str(&format!("{}, {}", previous.join(", "), peer))
                .ok()
                .map(Some)
        };
        let real_ip = if client_ip == fwd.peer {
            Some(Some(fwd.peer_header.clone()))
        } else {
            HeaderValue::from_str(&client_ip.to_string()).ok().map(Some)
        };
        let proto = if fwd.peer_trusted && headers.contains_key(&X_FORWARDED_PROTO) {
            None
        } else {
            Some(Some(HeaderValue::from_static(fwd.scheme)))
        };
        let host = if fwd.peer_trusted && headers.contains_key(&X_FORWARDED_HOST) {
            None
        } else {
            Some(fwd.host.cloned())
        };
        Forwarded {
            for_,
            real_ip,
            proto,
            host,
            drop_forwarded: !fwd.peer_trusted,
        }
    }

    /// Puts the forwarded headers into `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let fields = [
            (&X_FORWARDED_FOR, &self.for_),
            (&X_REAL_IP, &self.real_ip),
            (&X_FORWARDED_PROTO, &self.proto),
            (&X_FORWARDED_HOST, &self.host),
        ];
        for (name, change) in fields {
            match change {
                None => {}
                Some(Some(value)) => {
                    headers.insert(name.clone(), value.clone());
                }
                Some(None) => {
                    headers.remove(name);
                }
            }
        }
        if self.drop_forwarded {
            headers.remove(header::FORWARDED);
        }
    }

    /// Whether an incoming header named `name` is replaced or removed.
    pub fn replaces(&self, name: &HeaderName) -> bool {
        (self.for_.is_some() && *name == X_FORWARDED_FOR)
            || (self.real_ip.is_some() && *name == X_REAL_IP)
            || (self.proto.is_some() && *name == X_FORWARDED_PROTO)
            || (self.host.is_some() && *name == X_FORWARDED_HOST)
            || (self.drop_forwarded && *name == header::FORWARDED)
    }

    /// The fields to send in place of those [`Forwarded::replaces`] names.
    pub fn fields(&self) -> impl Iterator<Item = (&'static HeaderName, &HeaderValue)> {
        [
            (&X_FORWARDED_FOR, &self.for_),
            (&X_REAL_IP, &self.real_ip),
            (&X_FORWARDED_PROTO, &self.proto),
            (&X_FORWARDED_HOST, &self.host),
        ]
        .into_iter()
        .filter_map(|(name, change)| match change {
            Some(Some(value)) => Some((name, value)),
            _ => None,
        })
    }
}

/// The real client address: the peer itself, or, when the peer is a
/// trusted proxy, the right-most address in `X-Forwarded-For` that is not a
/// trusted proxy (the same rule as nginx's `real_ip_recursive on`).
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, is_trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests;
