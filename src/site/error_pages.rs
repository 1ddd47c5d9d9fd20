//! A site's `error_pages`: the HTML wharf sends instead of its plain-text
//! `502 Bad Gateway` and the like, as nginx's `error_page` and Caddy's
//! `handle_errors` do, so that visitors see the site's own "back in a
//! minute" page while the app is down or being deployed.
//!
//! The directory holds `<status>.html` files (`404.html`, `502.html`) and
//! `4xx.html` / `5xx.html` for the rest of a class. They are read when the
//! config loads (a reload reads them again) and kept in memory: an error
//! never waits on the disk.
//!
//! Only wharf's own answers take them (no route, a missing static file, no
//! server left, an upstream that failed or timed out, a body too large);
//! an app's own 404 or 500 reaches the client as the app wrote it, as
//! with nginx unless `proxy_intercept_errors` is on.

use std::path::Path;

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use crate::body::{self, Body};

/// Largest page kept; a bigger one is a config error.
pub const MAX_PAGE: u64 = 256 * 1024;

/// The pages of one site.
#[derive(Debug, Default)]
pub struct ErrorPages {
    exact: Vec<(u16, Bytes)>,
    client: Option<Bytes>,
    server: Option<Bytes>,
}

/// Marks an answer wharf made itself (`response::status` and the static
/// files' own errors): only those are replaced by a page.
#[derive(Debug, Clone, Copy)]
pub struct Generated;

impl ErrorPages {
    /// Reads the pages in `dir`: `400.html` … `599.html`, `4xx.html`,
    /// `5xx.html`; other files are left alone.
    pub fn load(dir: &Path) -> std::io::Result<ErrorPages> {
        let mut pages = ErrorPages::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(kind) = name.to_str().and_then(page_kind) else {
                continue;
            };
            let path = entry.path();
            let size = std::fs::metadata(&path)?.len();
            if size > MAX_PAGE {
                return Err(std::io::Error::other(format!(
                    "{} is {size} bytes, more than the {MAX_PAGE} an error page may have",
                    path.display()
                )));
            }
            let text = Bytes::from(std::fs::read(&path)?);
            match kind {
                PageKind::Exact(status) => pages.exact.push((status, text)),
                PageKind::Client => pages.client = Some(text),
                PageKind::Server => pages.server = Some(text),
            }
        }
        pages.exact.sort_by_key(|(status, _)| *status);
        Ok(pages)
    }

    /// The page for `status`: its own, else its class's.
    pub fn page(&self, status: u16) -> Option<&Bytes> {
        if let Some((_, page)) = self.exact.iter().find(|(s, _)| *s == status) {
            return Some(page);
        }
        match status {
            400..=499 => self.client.as_ref(),
            500..=599 => self.server.as_ref(),
            _ => None,
        }
    }

    /// Whether the directory held no page at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.client.is_none() && self.server.is_none()
    }

    /// `response` with its body replaced by the page for its status, when
    /// wharf made it and there is one.
    pub fn apply(&self, response: Response<Body>) -> Response<Body> {
        if response.extensions().get::<Generated>().is_none() {
            return response;
        }
        let Some(page) = self.page(response.status().as_u16()) else {
            return response;
        };
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        Response::from_parts(parts, body::full(page.clone()))
    }
}

pub(crate) enum PageKind {
    Exact(u16),
    Client,
    Server,
}

/// What a file name in the directory is a page for, if anything.
pub(crate) fn page_kind(name: &str) -> Option<PageKind> {
    let stem = name.strip_suffix(".html")?;
    match stem {
        "4xx" => Some(PageKind::Client),
        "5xx" => Some(PageKind::Server),
        _ if stem.len() == 3 && stem.bytes().all(|b| b.is_ascii_digit()) => {
            let status: u16 = stem.parse().ok()?;
            (400..=599)
                .contains(&status)
                .then_some(PageKind::Exact(status))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn a_status_takes_its_own_page_then_its_class() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("502.html"), "<h1>deploying</h1>").expect("write");
        std::fs::write(dir.path().join("5xx.html"), "<h1>down</h1>").expect("write");
        std::fs::write(dir.path().join("style.css"), "ignored").expect("write");
        std::fs::write(dir.path().join("200.html"), "not an error").expect("write");
        let pages = ErrorPages::load(dir.path()).expect("load");
        assert_eq!(
            pages.page(502).map(|p| &p[..]),
            Some(&b"<h1>deploying</h1>"[..])
        );
        assert_eq!(pages.page(504).map(|p| &p[..]), Some(&b"<h1>down</h1>"[..]));
        assert_eq!(pages.page(404), None);
        assert_eq!(pages.page(200), None);
    }

    #[test]
    fn only_answers_wharf_made_are_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("404.html"), "<h1>lost</h1>").expect("write");
        let pages = ErrorPages::load(dir.path()).expect("load");
        let ours = crate::response::status(StatusCode::NOT_FOUND);
        let replaced = pages.apply(ours);
        assert_eq!(
            replaced.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let mut apps = Response::new(body::full("app's own"));
        *apps.status_mut() = StatusCode::NOT_FOUND;
        let kept = pages.apply(apps);
        assert!(kept.headers().get(header::CONTENT_TYPE).is_none());
    }

    #[test]
    fn a_page_too_large_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = vec![b'x'; MAX_PAGE as usize + 1];
        std::fs::write(dir.path().join("500.html"), big).expect("write");
        let error = ErrorPages::load(dir.path()).expect_err("too large");
        assert!(error.to_string().contains("500.html"), "{error}");
    }
}
