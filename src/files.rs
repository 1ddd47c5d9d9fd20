//! Static file serving for a `static` route.
//!
//! Job: answer GET/HEAD requests from one directory tree, with the HTTP
//! niceties a browser and a CDN expect: MIME types, `Last-Modified`,
//! `ETag`, conditional requests (304), byte ranges (206), HEAD, directory
//! `index.html`, precompressed `.br`/`.gz` siblings, and an optional SPA
//! fallback to `index.html`.
//!
//! In: the request and `rest`, the request path with the route prefix
//! stripped (still percent-encoded). Out: a complete response whose body
//! streams from the file.
//!
//! Must not: serve anything outside the root, whatever the path spelling or
//! symlinks say. Two independent guards hold that line:
//! 1. [`decode_path`] percent-decodes `rest` itself and refuses (400) every
//!    spelling that could climb or hide a separator: `.`/`..`/`...` segments,
//!    encoded `/` or `\`, raw `\`, control bytes (NUL), empty segments and
//!    invalid UTF-8. What remains decodes identically in `ServeDir`.
//! 2. After `ServeDir` picked a file, the exact file it used (index.html or
//!    a `.gz`/`.br` sibling included) is canonicalized and must lie under the
//!    root canonicalized at build time; otherwise the response is dropped
//!    unread and replaced by a 404. This catches symlinks pointing out.
//!
//! tower-http's `ServeDir` does the file work. It lacks three things that
//! are added here: `ETag`/`If-None-Match` (computed from size and mtime),
//! `If-Range` (the `Range` is dropped, so a changed file is never spliced),
//! and `Vary: Accept-Encoding` (the precompressed siblings make responses
//! depend on it).
//!
//! By concept: the path check (guard 1, `files/path.rs`), the file
//! `ServeDir` served checked under the root with its `ETag` (guard 2,
//! `files/served.rs`), and the answers kept in memory (`files/cache.rs`).

use std::io;
use std::path::Path;
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tower_http::services::{ServeDir, ServeFile};

use crate::route::headers::RouteHeaders;

use crate::body::{self, Body};

pub(crate) mod cache;
mod path;
mod served;

#[cfg(test)]
mod tests;

use path::decode_path;
use served::{checked_etag, etag_matches, finish, served_file};

/// Serves one directory tree. Built once per config; cheap to share.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    /// Canonical root; every served file must canonicalize under it.
    root: Arc<Path>,
    spa: bool,
    service: Service,
    /// Small files already read, with what proves they are unchanged.
    cache: Arc<cache::Cache>,
    /// The route's `[site.route.headers]`, on every answer it gives
    /// (and so on the answers kept in memory).
    headers: Option<Arc<RouteHeaders>>,
}

/// `ServeDir`'s type changes with its fallback, so the two modes are kept
/// apart here rather than boxed per request.
#[derive(Debug, Clone)]
enum Service {
    Plain(ServeDir),
    Spa(ServeDir<ServeFile>),
}

impl StaticFiles {
    /// Builds the server for `root`, which must exist (config validated it).
    /// With `spa`, GET/HEAD for paths that are not files answer 200 with
    /// `root/index.html`.
    pub fn new(root: &Path, spa: bool) -> io::Result<StaticFiles> {
        let root = std::fs::canonicalize(root)?;
        let dir = ServeDir::new(&root)
            .append_index_html_on_directories(true)
            .precompressed_br()
            .precompressed_gzip();
        let service = if spa {
            Service::Spa(dir.fallback(ServeFile::new(root.join("index.html"))))
        } else {
            Service::Plain(dir)
        };
        Ok(StaticFiles {
            root: root.into(),
            spa,
            service,
            cache: Arc::new(cache::Cache::new(cache::FRESH_FOR)),
            headers: None,
        })
    }

    /// The same server, setting the route's `headers` on its answers.
    pub fn with_headers(mut self, headers: Option<Arc<RouteHeaders>>) -> StaticFiles {
        self.headers = headers;
        self
    }

    /// The route's headers, for answers written elsewhere (`h1::kept`).
    pub fn headers(&self) -> Option<&RouteHeaders> {
        self.headers.as_deref()
    }

    /// The same server with kept files trusted for `fresh_for` (tests).
    #[cfg(test)]
    fn fresh_for(mut self, fresh_for: std::time::Duration) -> StaticFiles {
        self.cache = Arc::new(cache::Cache::new(fresh_for));
        self
    }

    /// For the HTTP/1.1 fast path (`h1::kept`): the key of a plain `GET`
    /// for `rest` (still percent-encoded) with these `(name, value)`
    /// header fields, or `None` when only [`StaticFiles::serve`] can
    /// answer it (conditions and ranges `ServeDir` handles, a path it
    /// refuses).
    pub fn kept_key<'a, I>(&self, rest: &str, fields: impl Fn() -> I) -> Option<cache::Key>
    where
        I: Iterator<Item = (&'a [u8], &'a [u8])>,
    {
        let decoded = decode_path(rest)?;
        cache::key_from_fields(decoded, fields)
    }

    /// The kept answer for `key`, checked against the file as
    /// [`StaticFiles::serve`] checks it; `None` if it must read the file.
    pub async fn kept(&self, key: &cache::Key) -> Option<Arc<cache::Entry>> {
        self.cache.lookup(key).await
    }

    /// Answers `req`; `rest` is its path with the route prefix stripped
    /// (starts with `/`, still percent-encoded). The request body is ignored.
    pub async fn serve<B>(&self, req: Request<B>, rest: &str) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(decoded) = decode_path(rest) else {
            return plain(StatusCode::BAD_REQUEST, "bad request path\n");
        };
        let key = cache::key(&req, &decoded);
        let mut loading = None;
        if let Some(key) = &key {
            if let Some(entry) = self.cache.lookup(key).await {
                return entry.respond(req.headers().get(header::IF_NONE_MATCH), self.headers());
            }
            // A burst of requests for a file not kept yet: a few read it,
            // the rest find it kept once they get their turn (instead of
            // one blocking thread each).
            loading = Some(self.cache.loading().await);
            if let Some(entry) = self.cache.lookup(key).await {
                return entry.respond(req.headers().get(header::IF_NONE_MATCH), self.headers());
            }
        }
        // Boxed: `ServeDir`'s futures are kilobytes, and a kept file's
        // answer above should not carry (and move) them.
        Box::pin(self.read(req, rest, decoded, key, loading)).await
    }

    /// Answers `req` from disk through `ServeDir`, and keeps the answer
    /// when it is worth it. `_loading`: this request's turn to read.
    async fn read<B>(
        &self,
        req: Request<B>,
        rest: &str,
        decoded: String,
        key: Option<cache::Key>,
        _loading: Option<Option<tokio::sync::SemaphorePermit<'_>>>,
    ) -> Response<Body> {
        let (mut parts, _body) = req.into_parts();
        let inner_uri = match parts.uri.query() {
            Some(query) => Uri::try_from(format!("{rest}?{query}")),
            None => Uri::try_from(rest),
        };
        let Ok(inner_uri) = inner_uri else {
            return plain(StatusCode::BAD_REQUEST, "bad request path\n");
        };
        let original_uri = std::mem::replace(&mut parts.uri, inner_uri);
        let if_none_match = parts.headers.remove(header::IF_NONE_MATCH);
        if if_none_match.is_some() {
            // RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since, and
            // ServeDir only knows the latter.
            parts.headers.remove(header::IF_MODIFIED_SINCE);
        }
        if parts.headers.remove(header::IF_RANGE).is_some() {
            // ServeDir ignores If-Range; a full answer is always correct.
            parts.headers.remove(header::RANGE);
        }
        let inner = Request::from_parts(parts, ());

        let result = match &self.service {
            Service::Plain(dir) => dir.clone().try_call(inner).await,
            Service::Spa(dir) => dir.clone().try_call(inner).await,
        };
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(root = %self.root.display(), path = %decoded, error = %error, "reading static file failed");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n");
            }
        };
        match response.status() {
            StatusCode::NOT_FOUND => return not_found(),
            StatusCode::TEMPORARY_REDIRECT => return add_slash(&original_uri),
            _ => {}
        }

        // Guard 2: find the file ServeDir actually used and make sure it is
        // ours. The response body has not been polled yet, so dropping it
        // sends nothing.
        let extension = match response.headers().get(header::CONTENT_ENCODING) {
            None => None,
            Some(value) if value == "gzip" => Some("gz"),
            Some(value) if value == "br" => Some("br"),
            Some(_) => return not_found(),
        };
        let root = Arc::clone(&self.root);
        let base = root.join(decoded.trim_start_matches('/'));
        let spa = self.spa;
        let checked = tokio::task::spawn_blocking(move || {
            let (file, fallback) = served_file(&root, base, extension, spa);
            checked_etag(&root, &file, extension)
                .map(|(etag, validator)| (etag, validator, fallback))
        })
        .await;
        let Ok(Some((etag, validator, fallback))) = checked else {
            return not_found();
        };
        let response = finish(
            response,
            etag.clone(),
            if_none_match.as_ref(),
            self.headers(),
        );
        match key {
            // An SPA fallback answers for a path that may become a file.
            Some(key) if !fallback && cache::worth_keeping(&response) => {
                self.cache.keep(key, response, etag, validator).await
            }
            _ => response,
        }
    }
}
/// ServeDir redirects `/dir` to `/dir/` using the rewritten URI, which lacks
/// the route prefix; rebuild the location from the original request. The
/// redirect is permanent (308, as Caddy's; nginx's is a 301), not
/// ServeDir's 307: the slashed URL is where the directory always is, and
/// browsers and crawlers may remember it.
fn add_slash(original: &Uri) -> Response<Body> {
    let path = original.path();
    let location = match original.query() {
        Some(query) => format!("{path}/?{query}"),
        None => format!("{path}/"),
    };
    // `//host` or `/\host` would be read by browsers as another origin.
    if location.starts_with("//") || location.starts_with("/\\") || !location.starts_with('/') {
        return not_found();
    }
    let Ok(location) = HeaderValue::from_str(&location) else {
        return not_found();
    };
    let mut response = plain(StatusCode::PERMANENT_REDIRECT, "");
    response.headers_mut().insert(header::LOCATION, location);
    response
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // A site's error page may stand in for it.
    response
        .extensions_mut()
        .insert(crate::site::error_pages::Generated);
    response
}
