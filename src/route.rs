//! Routing: (host, path) -> the site and route that answer a request.
//!
//! Built once per config (re)load from `config::Site`s into lookup tables:
//! an exact-host map, wildcard suffixes sorted longest first, and a catch-all
//! site; inside a site, routes sorted by prefix length so the longest prefix
//! wins. The request path only reads these tables; nothing here allocates
//! per request.

pub mod headers;

use std::collections::HashMap;

use crate::config::HostPattern;

/// Host -> site index lookup.
#[derive(Debug, Default)]
pub struct HostTable {
    exact: HashMap<String, usize>,
    /// (".example.com", site) longest suffix first.
    wildcards: Vec<(String, usize)>,
    any: Option<usize>,
}

impl HostTable {
    /// Builds the table; `sites[i]` is the host list of site `i`. When two
    /// sites claim the same pattern the first wins (config validation
    /// rejects that case before we get here).
    pub fn new<'a>(sites: impl IntoIterator<Item = &'a [HostPattern]>) -> HostTable {
        let mut table = HostTable::default();
        for (index, hosts) in sites.into_iter().enumerate() {
            if hosts.is_empty() {
                table.any.get_or_insert(index);
            }
            for host in hosts {
                match host {
                    HostPattern::Any => {
                        table.any.get_or_insert(index);
                    }
                    HostPattern::Exact(name) => {
                        table.exact.entry(name.clone()).or_insert(index);
                    }
                    HostPattern::Wildcard(suffix) => table.wildcards.push((suffix.clone(), index)),
                }
            }
        }
        table
            .wildcards
            .sort_by_key(|entry| std::cmp::Reverse(entry.0.len()));
        table
    }

    /// Finds the site for a `Host` value (port and trailing dot ignored,
    /// case-insensitive).
    pub fn lookup(&self, host: &str) -> Option<usize> {
        let host = strip_port(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        // Host names are almost always lowercase already; only allocate when not.
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        if let Some(&index) = self.exact.get(host) {
            return Some(index);
        }
        for (suffix, index) in &self.wildcards {
            // "*.example.com" matches "a.example.com" and "a.b.example.com",
            // not "example.com" itself.
            if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                return Some(*index);
            }
        }
        self.any
    }
}

/// `example.com:8080` -> `example.com`, `[::1]:8080` -> `[::1]`.
pub(crate) fn strip_port(host: &str) -> &str {
    // Searched as bytes: `str::find` and `rfind` go through the general
    // pattern machinery, several times the cost of the loop, on every
    // request.
    let bytes = host.as_bytes();
    if bytes.first() == Some(&b'[') {
        return match bytes.iter().position(|&b| b == b']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        };
    }
    match bytes.iter().rposition(|&b| b == b':') {
        Some(colon) if bytes[colon + 1..].iter().all(u8::is_ascii_digit) => {
            host.get(..colon).unwrap_or(host)
        }
        _ => host,
    }
}

/// The bytes a `Host` name may hold (RFC 3986 reg-name: unreserved,
/// percent-encoded, sub-delims), and bytes above ASCII, which a raw
/// international name arrives as and no parser reads as a delimiter.
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || b >= 0x80
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        byte += 1;
    }
    table
};

/// Whether `value` is a `Host` field value (RFC 9112 3.2): empty, or
/// `uri-host [ ":" port ]`, where the host is a name or an IP literal in
/// brackets. No userinfo, path, whitespace or quote: a `Host` a backend
/// could split differently from wharf is answered 400, never routed.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&b| b == b':') {
        // An IPv6 literal holds colons of its own.
        Some(colon) if value.last() != Some(&b']') => (&value[..colon], &value[colon + 1..]),
        _ => (value, &[][..]),
    };
    port.iter().all(u8::is_ascii_digit)
        && match host {
            [b'[', literal @ .., b']'] => {
                !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            }
            _ => host.iter().all(|&b| HOST_BYTES[usize::from(b)]),
        }
}

/// Path-prefix lookup inside one site.
#[derive(Debug)]
pub struct PathTable<T> {
    /// (prefix, value), longest prefix first.
    routes: Vec<(String, T)>,
}

/// A matched route: its value and the rest of the path after the prefix
/// (always starting with `/`).
pub struct Matched<'a, T> {
    pub value: &'a T,
    pub prefix: &'a str,
    pub rest: &'a str,
}

impl<T> PathTable<T> {
    pub fn new(mut routes: Vec<(String, T)>) -> PathTable<T> {
        routes.sort_by_key(|entry| std::cmp::Reverse(entry.0.len()));
        PathTable { routes }
    }

    /// Longest prefix match. A prefix ending in `/` also matches the path
    /// without that slash (`/static/` matches `/static`), like a directory.
    pub fn lookup<'a>(&'a self, path: &'a str) -> Option<Matched<'a, T>> {
        for (prefix, value) in &self.routes {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                // Keep the slash that ended the prefix as the start of `rest`.
                let rest = if prefix.ends_with('/') {
                    &path[prefix.len() - 1..]
                } else if rest.is_empty() || rest.starts_with('/') {
                    rest
                } else {
                    // "/api" must not match "/apiary".
                    continue;
                };
                let rest = if rest.is_empty() { "/" } else { rest };
                return Some(Matched {
                    value,
                    prefix,
                    rest,
                });
            }
            if prefix.len() > 1 && prefix.ends_with('/') && path == &prefix[..prefix.len() - 1] {
                return Some(Matched {
                    value,
                    prefix,
                    rest: "/",
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HostTable {
        let a = vec![HostPattern::Exact("example.com".into())];
        let b = vec![HostPattern::Wildcard(".example.com".into())];
        let c = vec![HostPattern::Wildcard(".api.example.com".into())];
        let d = vec![HostPattern::Any];
        HostTable::new([a.as_slice(), b.as_slice(), c.as_slice(), d.as_slice()])
    }

    #[test]
    fn exact_host_wins_then_longest_wildcard_then_any() {
        let t = table();
        assert_eq!(t.lookup("example.com"), Some(0));
        assert_eq!(t.lookup("EXAMPLE.com:8080"), Some(0));
        assert_eq!(t.lookup("example.com."), Some(0));
        assert_eq!(t.lookup("www.example.com"), Some(1));
        assert_eq!(t.lookup("v1.api.example.com"), Some(2));
        assert_eq!(t.lookup("other.org"), Some(3));
        assert_eq!(t.lookup("[::1]:8080"), Some(3));
    }

    #[test]
    fn ports_are_stripped_only_when_they_are_ports() {
        for (host, bare) in [
            ("example.com:8080", "example.com"),
            ("example.com:", "example.com"),
            ("example.com", "example.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("[::1", "[::1"),
            ("a:b", "a:b"),
            ("127.0.0.1:19010", "127.0.0.1"),
            ("é.example:80", "é.example"),
            ("", ""),
        ] {
            assert_eq!(strip_port(host), bare, "{host}");
        }
    }

    #[test]
    fn hosts_are_valid_only_as_rfc_9112_writes_them() {
        for host in [
            "",
            "example.com",
            "example.com:8080",
            "example.com:",
            "[::1]",
            "[::1]:8080",
            "127.0.0.1:80",
            "xn--caf-dma.example",
            "é.example",
            "a_b.example",
        ] {
            assert!(valid_host(host.as_bytes()), "{host:?} is valid");
        }
        for host in [
            "user@example.com",
            "user:pass@example.com",
            "example.com/x",
            "a b",
            "example.com\"",
            "example.com:x",
            "example.com:80:80",
            "[::1",
            "[]",
            "[::1]x",
            "[v1.x]",
            "example.com?",
            "example.com#",
            "exa\\mple",
            "<a>",
            "a\tb",
        ] {
            assert!(!valid_host(host.as_bytes()), "{host:?} is not valid");
        }
    }

    #[test]
    fn no_catch_all_means_no_site() {
        let a = vec![HostPattern::Exact("example.com".into())];
        let t = HostTable::new([a.as_slice()]);
        assert_eq!(t.lookup("evil.com"), None);
        assert_eq!(t.lookup("xexample.com"), None);
    }

    #[test]
    fn longest_prefix_wins_and_rest_keeps_leading_slash() {
        let t = PathTable::new(vec![
            ("/".to_string(), 1),
            ("/static/".to_string(), 2),
            ("/api".to_string(), 3),
        ]);
        let m = t.lookup("/static/css/a.css").expect("match");
        assert_eq!((*m.value, m.rest), (2, "/css/a.css"));
        let m = t.lookup("/static").expect("match");
        assert_eq!((*m.value, m.rest), (2, "/"));
        let m = t.lookup("/api/users").expect("match");
        assert_eq!((*m.value, m.rest), (3, "/users"));
        let m = t.lookup("/apiary").expect("match");
        assert_eq!(*m.value, 1);
        let m = t.lookup("/").expect("match");
        assert_eq!((*m.value, m.rest), (1, "/"));
    }
}
