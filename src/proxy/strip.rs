//! `strip_prefix` routes: the route's path taken off the request's before
//! it goes upstream (nginx's `proxy_pass http://app/;` in `location /api/`,
//! Caddy's `handle_path`), and the `X-Forwarded-Prefix` that tells the app
//! where it is mounted, as Traefik's `StripPrefix` does.
//!
//! Both request paths use this: the fast path (`h1::exchange`) and
//! `proxy::forward`.

use http::header::{HeaderMap, HeaderName, HeaderValue};

pub static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The path and query the upstream gets for `target` (origin-form, the
/// client's bytes) on a route whose path `prefix` matched it: what follows
/// the prefix, starting with `/`, then the query as it came. `/api/` and
/// `/api` both take `/api/users?x=1` to `/users?x=1`, and `/api` to `/`.
pub fn target(prefix: &str, target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    // The route matched, so the path starts with the prefix (without its
    // final slash) and goes on with `/` or ends there.
    let rest = path.strip_prefix(mount(prefix)).unwrap_or(path);
    let mut out = String::with_capacity(target.len());
    if !rest.starts_with('/') {
        out.push('/');
    }
    out.push_str(rest);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Sets `X-Forwarded-Prefix` to where the route is mounted (`/api`). A
/// trusted proxy's value is the part of the path before wharf's, so it is
/// kept in front; from anyone else it is replaced, as the other forwarded
/// headers are.
pub fn set_prefix(headers: &mut HeaderMap, peer_trusted: bool, prefix: &str) {
    let mount = mount(prefix);
    let outer = peer_trusted
        .then(|| headers.get(&X_FORWARDED_PREFIX))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim_end_matches('/'))
        .filter(|value| value.starts_with('/'))
        .unwrap_or("");
    let value = HeaderValue::from_str(&format!("{outer}{mount}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/"));
    headers.insert(X_FORWARDED_PREFIX.clone(), value);
}

/// The route's path without its final slash: `/api/` is mounted at `/api`.
fn mount(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_of_the_path_goes_upstream_with_the_query() {
        for prefix in ["/api/", "/api"] {
            assert_eq!(target(prefix, "/api/users?x=1&y"), "/users?x=1&y");
            assert_eq!(target(prefix, "/api/"), "/");
            assert_eq!(target(prefix, "/api"), "/");
            assert_eq!(target(prefix, "/api?q"), "/?q");
            assert_eq!(target(prefix, "/api//double"), "//double");
            assert_eq!(target(prefix, "/api/a%2Fb"), "/a%2Fb");
        }
        assert_eq!(target("/v1/api/", "/v1/api/x"), "/x");
    }

    #[test]
    fn the_prefix_header_is_replaced_unless_a_trusted_proxy_mounted_wharf() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_FORWARDED_PREFIX, HeaderValue::from_static("/evil"));
        set_prefix(&mut headers, false, "/api/");
        assert_eq!(headers.get_all(&X_FORWARDED_PREFIX).iter().count(), 1);
        assert_eq!(headers[&X_FORWARDED_PREFIX], "/api");

        let mut headers = HeaderMap::new();
        headers.insert(&X_FORWARDED_PREFIX, HeaderValue::from_static("/shop/"));
        set_prefix(&mut headers, true, "/api");
        assert_eq!(headers[&X_FORWARDED_PREFIX], "/shop/api");

        let mut headers = HeaderMap::new();
        set_prefix(&mut headers, true, "/api/");
        assert_eq!(headers[&X_FORWARDED_PREFIX], "/api");
    }
}
