//! A route's `[site.route.headers]`: response headers set on its answers,
//! as nginx's `add_header` and Caddy's `header` do (`Cache-Control` for
//! hashed assets, `X-Frame-Options`, a `Server` taken off). A value
//! replaces what the upstream or the file sent under that name; an empty
//! value removes the header.
//!
//! They go on the answers nginx's `add_header` puts them on: 200, 201,
//! 204, 206, 301, 302, 303, 304, 307 and 308, not on errors, so an
//! `immutable` cache lifetime never sticks to a 404 or a 502.
//!
//! Used by the general path (`site.rs`, on a `HeaderMap`), by static
//! routes' answers (`files`, so kept files carry them), and by the fast
//! path's relayed heads (`h1::head::response`), which write them as bytes.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The statuses the headers go on (nginx's list for `add_header`).
const STATUSES: [u16; 10] = [200, 201, 204, 206, 301, 302, 303, 304, 307, 308];

/// Names a route may not set: the framing and connection of the answer,
/// and what wharf sets itself.
pub const RESERVED: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "content-encoding",
    "content-range",
    "date",
    "x-request-id",
    "strict-transport-security",
    "vary",
];

/// One route's headers, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteHeaders {
    /// `None`: removed.
    fields: Box<[(HeaderName, Option<HeaderValue>)]>,
}

impl RouteHeaders {
    /// From the config's (name, value) pairs; an empty value removes.
    /// Names and values were checked when the config loaded; a pair that
    /// does not parse is left out.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> RouteHeaders {
        let fields = pairs
            .into_iter()
            .filter_map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                let value = match value {
                    "" => None,
                    value => Some(HeaderValue::from_str(value).ok()?),
                };
                Some((name, value))
            })
            .collect();
        RouteHeaders { fields }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether an answer with `status` gets the headers.
    pub fn apply_to(status: u16) -> bool {
        STATUSES.contains(&status)
    }

    /// Sets (or removes) the headers in `headers`, for an answer of
    /// `status`.
    pub fn apply(&self, status: u16, headers: &mut HeaderMap) {
        if !Self::apply_to(status) {
            return;
        }
        for (name, value) in self.fields.iter() {
            match value {
                Some(value) => {
                    headers.insert(name.clone(), value.clone());
                }
                None => {
                    headers.remove(name);
                }
            }
        }
    }

    /// Whether an upstream header called `name` gives way to these.
    pub fn replaces(&self, name: &[u8]) -> bool {
        self.fields
            .iter()
            .any(|(ours, _)| ours.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Writes the headers that are set as `name: value` lines.
    pub fn write(&self, out: &mut Vec<u8>) {
        for (name, value) in self.fields.iter() {
            if let Some(value) = value {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> RouteHeaders {
        RouteHeaders::new([
            ("Cache-Control", "public, max-age=31536000, immutable"),
            ("server", ""),
        ])
    }

    #[test]
    fn set_replaces_and_empty_removes_on_success_statuses_only() {
        let mut map = HeaderMap::new();
        map.insert("cache-control", HeaderValue::from_static("no-cache"));
        map.insert("server", HeaderValue::from_static("app/1.0"));
        let mut not_found = map.clone();
        headers().apply(200, &mut map);
        assert_eq!(map["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(map.get_all("cache-control").iter().count(), 1);
        assert!(map.get("server").is_none());
        headers().apply(404, &mut not_found);
        assert_eq!(not_found["cache-control"], "no-cache");
        assert!(RouteHeaders::apply_to(304) && !RouteHeaders::apply_to(502));
    }

    #[test]
    fn written_as_lines_and_matched_whatever_the_case() {
        let mut out = Vec::new();
        headers().write(&mut out);
        assert_eq!(
            out,
            b"cache-control: public, max-age=31536000, immutable\r\n".to_vec()
        );
        assert!(headers().replaces(b"Cache-Control"));
        assert!(headers().replaces(b"SERVER"));
        assert!(!headers().replaces(b"etag"));
        assert!(RouteHeaders::default().is_empty());
    }
}
