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

/// Whether `intercept` would answer a plain-HTTP request for this path and
/// host itself (the HTTP/1.1 fast path leaves those to the general path).
pub fn answers_plain_http(path: &str, host: &str, manager: &Manager) -> bool {
    if path.starts_with(CHALLENGE_PREFIX) {
        return true;
    }
    let policy = manager.policy();
    if !policy.active || !policy.redirect_http {
        return false;
    }
    let host = strip_port(host);
    !host.is_empty() && manager.serves(host)
}

/// For an HTTPS response: adds HSTS when configured.
pub fn secure(response: &mut Response<Body>, manager: &Manager) {
    if let Some(value) = &manager.policy().hsts {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, value.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tls::Certificate;

    fn manager(https_port: u16, hsts: Option<&'static str>) -> Manager {
        let manager = Manager::new();
        let names = vec!["a.test".to_string(), "*.w.test".to_string()];
        let generated = rcgen::generate_simple_self_signed(names).expect("generate");
        let cert = Certificate::from_pem(
            &generated.cert.pem(),
            &generated.signing_key.serialize_pem(),
        )
        .expect("pair");
        manager.store.install("a.test", Arc::new(cert));
        manager.policy.store(Arc::new(Policy {
            active: true,
            redirect_http: true,
            hsts: hsts.map(HeaderValue::from_static),
            https_port,
        }));
        manager
    }

    fn request(host: &str, target: &str) -> Request<()> {
        Request::get(target)
            .header("host", host)
            .body(())
            .expect("request")
    }

    fn location(response: &Response<Body>) -> &str {
        response.headers()[header::LOCATION]
            .to_str()
            .expect("ascii")
    }

    #[test]
    fn redirects_keep_path_and_query_and_name_the_port_unless_443() {
        let on_443 = manager(443, None);
        let response = intercept(&request("a.test:80", "/p/q?x=1&y"), &on_443).expect("redirect");
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(location(&response), "https://a.test/p/q?x=1&y");
        let on_8443 = manager(8443, None);
        let response = intercept(&request("sub.w.test", "/"), &on_8443).expect("redirect");
        assert_eq!(location(&response), "https://sub.w.test:8443/");
    }

    #[test]
    fn hosts_without_a_certificate_and_the_challenge_path_are_left_alone() {
        let manager = manager(443, None);
        assert!(intercept(&request("other.test", "/"), &manager).is_none());
        assert!(intercept(&request("10.0.0.1", "/"), &manager).is_none());
        let unknown = request("a.test", "/.well-known/acme-challenge/unknown");
        assert!(
            intercept(&unknown, &manager).is_none(),
            "routed, not redirected"
        );
        manager.challenges.set_http("tok", "tok.thumb");
        let known = request("a.test", "/.well-known/acme-challenge/tok");
        let response = intercept(&known, &manager).expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn no_redirect_when_turned_off_and_hsts_only_when_set() {
        let manager = manager(443, Some("max-age=60"));
        let mut response = Response::new(body::empty());
        secure(&mut response, &manager);
        assert_eq!(
            response.headers()[header::STRICT_TRANSPORT_SECURITY],
            "max-age=60"
        );
        manager.policy.store(Arc::new(Policy {
            redirect_http: false,
            ..Policy::clone(&manager.policy())
        }));
        assert!(intercept(&request("a.test", "/"), &manager).is_none());
        let plain = self::manager(443, None);
        let mut response = Response::new(body::empty());
        secure(&mut response, &plain);
        assert!(response
            .headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none());
    }
}
