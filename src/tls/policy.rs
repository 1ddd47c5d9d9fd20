//! What HTTPS changes on the HTTP side of wharf, applied in
//! `server/conn.rs` before and after routing.
//!
//! On plain HTTP, `intercept` answers ACME HTTP-01 challenges
//! (`/.well-known/acme-challenge/<token>`) before any route or redirect,
//! and otherwise redirects to HTTPS with 308, path and query kept, but only
//! for hosts that have a certificate right now: until one is issued, HTTP
//! keeps serving the site. The challenge path is never redirected. On
//! HTTPS, `secure` adds the configured `Strict-Transport-Security`.

use http::{header, HeaderValue, Request, Response, StatusCode};

use super::Manager;
use crate::body::{self, Body};
use crate::response;
use crate::route::strip_port;

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// What the HTTP side does for TLS, per loaded config.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Certificates are managed and at least one HTTPS listener runs.
    pub active: bool,
    pub redirect_http: bool,
    pub hsts: Option<HeaderValue>,
    /// Port of the first HTTPS listener, for redirects.
    pub https_port: u16,
}

/// For a plain-HTTP request: the challenge answer or the HTTPS redirect,
/// or `None` to route it as usual.
pub fn intercept<B>(req: &Request<B>, manager: &Manager) -> Option<Response<Body>> {
    let path = req.uri().path();
    if let Some(token) = path.strip_prefix(CHALLENGE_PREFIX) {
        let answer = manager.http_challenge(token)?;
        let mut response = Response::new(body::full(answer));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return Some(response);
    }
    let policy = manager.policy();
    if !policy.active || !policy.redirect_http {
        return None;
    }
    let authority = match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => req.headers().get(header::HOST)?.to_str().ok()?,
    };
    let host = strip_port(authority);
    if host.is_empty() || !manager.serves(host) {
        return None;
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let location = if policy.https_port == 443 {
        format!("https://{host}{target}")
    } else {
        format!("https://{host}:{}{target}", policy.https_port)
    };
    let location = HeaderValue::from_str(&location).ok()?;
    Some(response::redirect(StatusCode::PERMANENT_REDIRECT, location))
}

/// For an HTTPS response: adds HSTS when configured.
pub fn secure(response: &mut Response<Body>, manager: &Manager) {
    if let Some(value) = &manager.policy().hsts {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, value.clone());
    }
}
