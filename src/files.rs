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

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tower_http::services::fs::ServeFileSystemResponseBody;
use tower_http::services::{ServeDir, ServeFile};

use crate::body::{self, Body};

pub(crate) mod cache;

/// Serves one directory tree. Built once per config; cheap to share.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    /// Canonical root; every served file must canonicalize under it.
    root: Arc<Path>,
    spa: bool,
    service: Service,
    /// Small files already read, with what proves they are unchanged.
    cache: Arc<cache::Cache>,
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
        })
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
                return entry.respond(req.headers().get(header::IF_NONE_MATCH));
            }
            // A burst of requests for a file not kept yet: a few read it,
            // the rest find it kept once they get their turn (instead of
            // one blocking thread each).
            loading = Some(self.cache.loading().await);
            if let Some(entry) = self.cache.lookup(key).await {
                return entry.respond(req.headers().get(header::IF_NONE_MATCH));
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
        let response = finish(response, etag.clone(), if_none_match.as_ref());
        match key {
            // An SPA fallback answers for a path that may become a file.
            Some(key) if !fallback && cache::worth_keeping(&response) => {
                self.cache.keep(key, response, etag, validator).await
            }
            _ => response,
        }
    }
}

/// Percent-decodes `rest` and returns it if it is a plain path of normal
/// segments; `None` for anything that could climb out or alias a separator.
fn decode_path(rest: &str) -> Option<String> {
    let raw = rest.as_bytes();
    if raw.first() != Some(&b'/') {
        return None;
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        let byte = if byte == b'%' {
            let high = bytes.next().and_then(|b| hex(*b))?;
            let low = bytes.next().and_then(|b| hex(*b))?;
            let byte = high << 4 | low;
            if byte == b'/' {
                return None;
            }
            byte
        } else {
            byte
        };
        if byte == b'\\' || byte.is_ascii_control() {
            return None;
        }
        decoded.push(byte);
    }
    let decoded = String::from_utf8(decoded).ok()?;
    let mut segments = decoded[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        // An empty last segment is the trailing slash of a directory.
        if (segment.is_empty() && !last)
            || (!segment.is_empty() && segment.bytes().all(|b| b == b'.'))
        {
            return None;
        }
    }
    Some(decoded)
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Mirrors ServeDir's choice: a directory means its `index.html`; a content
/// encoding means the `.gz`/`.br` sibling; a missing file in SPA mode means
/// the root `index.html` fallback.
/// Also says whether the file is that fallback.
fn served_file(root: &Path, base: PathBuf, extension: Option<&str>, spa: bool) -> (PathBuf, bool) {
    let mut file = base;
    if file.is_dir() {
        file.push("index.html");
    }
    match extension {
        Some(extension) => {
            let mut name = file
                .file_name()
                .map(OsStr::to_os_string)
                .unwrap_or_default();
            name.push(".");
            name.push(extension);
            file.set_file_name(name);
        }
        None if spa && !file.exists() => return (root.join("index.html"), true),
        None => {}
    }
    (file, false)
}

/// Canonicalizes `file`; if it lies under `root`, returns its strong ETag
/// (size, mtime and encoding, so each variant has its own) and what tells
/// later whether it changed.
fn checked_etag(
    root: &Path,
    file: &Path,
    extension: Option<&str>,
) -> Option<(HeaderValue, cache::Validator)> {
    let canonical = std::fs::canonicalize(file).ok()?;
    if !canonical.starts_with(root) {
        tracing::warn!(root = %root.display(), file = %canonical.display(), "refused a file outside the static root");
        return None;
    }
    let metadata = std::fs::metadata(&canonical).ok()?;
    let validator = cache::Validator::of(canonical, &metadata);
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    let etag = format!(
        "\"{:x}-{:x}{}{}\"",
        metadata.len(),
        modified,
        if extension.is_some() { "-" } else { "" },
        extension.unwrap_or("")
    );
    Some((HeaderValue::from_str(&etag).ok()?, validator))
}

/// Adds ETag and Vary, and turns a matching If-None-Match into a 304.
fn finish(
    response: Response<ServeFileSystemResponseBody>,
    etag: HeaderValue,
    if_none_match: Option<&HeaderValue>,
) -> Response<Body> {
    let status = response.status();
    let cacheable = matches!(
        status,
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    );
    let mut response = if cacheable && if_none_match.is_some_and(|value| etag_matches(value, &etag))
    {
        let mut not_modified = Response::new(body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        copy_header(
            response.headers(),
            not_modified.headers_mut(),
            header::LAST_MODIFIED,
        );
        not_modified
    } else {
        response.map(body::boxed)
    };
    if cacheable {
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag);
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Weak comparison (RFC 9110 8.8.3.2) against a list of entity tags.
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let ours = etag.as_bytes();
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/").as_bytes() == ours)
}

fn copy_header(from: &HeaderMap, to: &mut HeaderMap, name: header::HeaderName) {
    if let Some(value) = from.get(&name) {
        to.insert(name, value.clone());
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
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const SECRET: &[u8] = b"TOP-SECRET-BYTES";

    /// `outer/secret` sits next to the root `outer/root`, which holds a few
    /// files and symlinks pointing back out.
    struct Site {
        _outer: tempfile::TempDir,
        root: PathBuf,
    }

    fn site() -> Site {
        let outer = tempfile::tempdir().expect("tempdir");
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("docs")).expect("mkdir");
        std::fs::write(outer.path().join("secret"), SECRET).expect("write");
        std::fs::write(root.join("index.html"), "<h1>home</h1>").expect("write");
        std::fs::write(root.join("style.css"), "body { color: red }").expect("write");
        std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>").expect("write");
        std::fs::write(root.join("app.js"), "console.log(1)").expect("write");
        std::fs::write(root.join("app.js.gz"), b"\x1f\x8bfake-gzip").expect("write");
        std::fs::write(root.join("data.bin"), b"0123456789").expect("write");
        std::os::unix::fs::symlink(outer.path().join("secret"), root.join("link"))
            .expect("symlink");
        std::os::unix::fs::symlink(outer.path(), root.join("outdir")).expect("symlink");
        std::os::unix::fs::symlink(outer.path().join("secret"), root.join("style.css.gz"))
            .expect("symlink");
        Site {
            _outer: outer,
            root,
        }
    }

    fn get(rest: &str) -> http::request::Builder {
        Request::get(format!("/static{rest}"))
    }

    async fn send(
        files: &StaticFiles,
        req: http::request::Builder,
        rest: &str,
    ) -> (Response<()>, Vec<u8>) {
        let req = req.body(()).expect("request");
        let response = files.serve(req, rest).await;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        (Response::from_parts(parts, ()), bytes.to_vec())
    }

    fn header(response: &Response<()>, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn serves_a_file_with_its_content_type() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let (response, body) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, header::CONTENT_TYPE), "text/css");
        assert_eq!(body, b"body { color: red }");
        assert!(!header(&response, header::LAST_MODIFIED).is_empty());
    }

    #[tokio::test]
    async fn etag_then_if_none_match_is_not_modified() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let (response, _) = send(&files, get("/data.bin"), "/data.bin").await;
        let etag = header(&response, header::ETAG).to_owned();
        assert!(etag.starts_with('"'), "etag {etag:?}");
        let req = get("/data.bin").header(header::IF_NONE_MATCH, format!("\"nope\", W/{etag}"));
        let (response, body) = send(&files, req, "/data.bin").await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&response, header::ETAG), etag);
        assert!(body.is_empty());
        let req = get("/data.bin").header(header::IF_NONE_MATCH, "\"other\"");
        let (response, body) = send(&files, req, "/data.bin").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, b"0123456789");
    }

    #[tokio::test]
    async fn range_returns_partial_content() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let req = get("/data.bin").header(header::RANGE, "bytes=2-5");
        let (response, body) = send(&files, req, "/data.bin").await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(header(&response, header::CONTENT_RANGE), "bytes 2-5/10");
        assert_eq!(body, b"2345");
        // If-Range cannot be checked by ServeDir, so the whole file comes back.
        let req = get("/data.bin")
            .header(header::RANGE, "bytes=2-5")
            .header(header::IF_RANGE, "\"old\"");
        let (response, body) = send(&files, req, "/data.bin").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, b"0123456789");
    }

    #[tokio::test]
    async fn head_has_headers_but_no_body() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let (response, body) = send(&files, Request::head("/static/data.bin"), "/data.bin").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, header::CONTENT_LENGTH), "10");
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn directory_serves_index_and_redirects_without_slash() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let (response, body) = send(&files, get("/docs/"), "/docs/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, header::CONTENT_TYPE), "text/html");
        assert_eq!(body, b"<h1>docs</h1>");
        let (response, body) = send(&files, get("/"), "/").await;
        assert_eq!(
            (response.status(), body.as_slice()),
            (StatusCode::OK, &b"<h1>home</h1>"[..])
        );
        // The redirect keeps the route prefix and the query.
        let (response, _) = send(&files, get("/docs?x=1"), "/docs").await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&response, header::LOCATION), "/static/docs/?x=1");
    }

    #[tokio::test]
    async fn gzip_sibling_is_served_when_accepted() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let req = get("/app.js").header(header::ACCEPT_ENCODING, "gzip");
        let (response, body) = send(&files, req, "/app.js").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, header::CONTENT_ENCODING), "gzip");
        assert_eq!(header(&response, header::VARY), "accept-encoding");
        assert!(header(&response, header::CONTENT_TYPE).contains("javascript"));
        assert_eq!(body, b"\x1f\x8bfake-gzip");
        let (response, body) = send(&files, get("/app.js"), "/app.js").await;
        assert_eq!(header(&response, header::CONTENT_ENCODING), "");
        assert_eq!(body, b"console.log(1)");
    }

    #[tokio::test]
    async fn spa_falls_back_to_index_for_get_only() {
        let site = site();
        let files = StaticFiles::new(&site.root, true).expect("files");
        let (response, body) = send(&files, get("/app/users/7"), "/app/users/7").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, b"<h1>home</h1>");
        let (response, body) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(body, b"body { color: red }");
        assert_eq!(response.status(), StatusCode::OK);
        let req = Request::post("/static/app/users/7");
        let (response, _) = send(&files, req, "/app/users/7").await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, header::ALLOW), "GET, HEAD");

        let plain = StaticFiles::new(&site.root, false).expect("files");
        let (response, body) = send(&plain, get("/app/users/7"), "/app/users/7").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body, b"not found\n");
    }

    #[tokio::test]
    async fn traversal_and_escaping_symlinks_are_refused() {
        let site = site();
        let payloads = [
            "/../secret",
            "/%2e%2e/secret",
            "/%2E%2E%2Fsecret",
            "/..%2fsecret",
            "/..\\secret",
            "/..%5csecret",
            "/%5c..%5csecret",
            "/%00",
            "/index.html%00.css",
            "/a/../../secret",
            "/./index.html",
            "/....//secret",
            "/...",
            "//secret",
            "/%ff",
            "/%2",
            "/%zz",
            "secret",
            "/link",
            "/outdir/secret",
            "/outdir/root/../secret",
        ];
        for spa in [false, true] {
            let files = StaticFiles::new(&site.root, spa).expect("files");
            for payload in payloads {
                let (response, body) = send(&files, Request::get("/"), payload).await;
                assert!(
                    matches!(
                        response.status(),
                        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
                    ),
                    "{payload} (spa {spa}) answered {}",
                    response.status()
                );
                assert!(
                    !body.windows(SECRET.len()).any(|w| w == SECRET),
                    "{payload} leaked"
                );
            }
            // A precompressed sibling that is a symlink out is refused too.
            let req = get("/style.css").header(header::ACCEPT_ENCODING, "gzip");
            let (response, body) = send(&files, req, "/style.css").await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert!(!body.windows(SECRET.len()).any(|w| w == SECRET));
        }
    }

    /// A kept file is answered from memory while it is unchanged, and read
    /// again once its size, mtime or inode differ.
    #[tokio::test]
    async fn a_kept_file_is_served_until_it_changes() {
        let site = site();
        let files = StaticFiles::new(&site.root, false)
            .expect("files")
            .fresh_for(std::time::Duration::ZERO);
        let path = site.root.join("style.css");
        let (first, body) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(body, b"body { color: red }");
        assert_eq!(files.cache.len(), 1);
        let (second, body) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(body, b"body { color: red }");
        assert_eq!(first.headers(), second.headers());
        // Edited in place, another length.
        std::fs::write(&path, "body { color: blue; }").expect("write");
        let (_, body) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(body, b"body { color: blue; }");
        // Replaced by a rename with the same length and mtime: a new inode.
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let next = site.root.join("style.css.next");
        std::fs::write(&next, "body { color: pink; }").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&next)
            .and_then(|file| file.set_modified(modified))
            .expect("set mtime");
        std::fs::rename(&next, &path).expect("rename");
        let (_, body) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(body, b"body { color: pink; }");
        // Deleted.
        std::fs::remove_file(&path).expect("remove");
        let (response, _) = send(&files, get("/style.css"), "/style.css").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    /// Within the freshness window the kept answer stands; conditions,
    /// ranges and other encodings are answered correctly around it.
    #[tokio::test]
    async fn kept_answers_respect_conditions_ranges_and_encodings() {
        let site = site();
        let files = StaticFiles::new(&site.root, false).expect("files");
        let (response, body) = send(&files, get("/data.bin"), "/data.bin").await;
        assert_eq!(body, b"0123456789");
        let etag = header(&response, header::ETAG).to_owned();
        std::fs::write(site.root.join("data.bin"), b"9876543210").expect("write");
        // Trusted for a second: the same answer, not the new bytes.
        let (_, body) = send(&files, get("/data.bin"), "/data.bin").await;
        assert_eq!(body, b"0123456789");
        let req = get("/data.bin").header(header::IF_NONE_MATCH, &etag);
        let (response, body) = send(&files, req, "/data.bin").await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&response, header::ETAG), etag);
        assert!(body.is_empty());
        // A range is ServeDir's, from the file as it is now.
        let req = get("/data.bin").header(header::RANGE, "bytes=0-1");
        let (response, body) = send(&files, req, "/data.bin").await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, b"98");
        // The gzip sibling and the plain file are kept apart.
        let req = get("/app.js").header(header::ACCEPT_ENCODING, "gzip");
        let (response, body) = send(&files, req, "/app.js").await;
        assert_eq!(header(&response, header::CONTENT_ENCODING), "gzip");
        assert_eq!(body, b"\x1f\x8bfake-gzip");
        let (response, body) = send(&files, get("/app.js"), "/app.js").await;
        assert_eq!(header(&response, header::CONTENT_ENCODING), "");
        assert_eq!(body, b"console.log(1)");
        let req = get("/app.js").header(header::ACCEPT_ENCODING, "gzip");
        let (_, body) = send(&files, req, "/app.js").await;
        assert_eq!(body, b"\x1f\x8bfake-gzip");
    }

    /// A compressible file is kept compressed for each `Accept-Encoding`,
    /// as the site's stack would compress it, and plain for clients that
    /// ask for nothing.
    #[tokio::test]
    async fn compressible_files_are_kept_compressed() {
        let site = site();
        let page = "<p>a static page worth compressing</p>\n".repeat(50);
        std::fs::write(site.root.join("page.html"), &page).expect("write");
        let files = StaticFiles::new(&site.root, false).expect("files");
        let browser = "gzip, deflate, br, zstd";
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let req = get("/page.html").header(header::ACCEPT_ENCODING, browser);
            let (response, body) = send(&files, req, "/page.html").await;
            assert_eq!(header(&response, header::CONTENT_ENCODING), "zstd");
            assert!(header(&response, header::ETAG).starts_with("W/"));
            assert_eq!(header(&response, header::VARY), "accept-encoding");
            assert_eq!(
                header(&response, header::CONTENT_LENGTH),
                body.len().to_string()
            );
            let decoded = zstd::stream::decode_all(&body[..]).expect("zstd");
            assert_eq!(decoded, page.as_bytes());
            bodies.push(body);
        }
        assert_eq!(bodies[0], bodies[1]);
        let (response, body) = send(&files, get("/page.html"), "/page.html").await;
        assert_eq!(header(&response, header::CONTENT_ENCODING), "");
        assert_eq!(body, page.as_bytes());
        assert_eq!(files.cache.len(), 2);
    }

    /// A burst of requests for a file not kept yet all get it whole, and
    /// it is kept once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_for_a_new_file_is_answered_whole() {
        let site = site();
        let files = Arc::new(StaticFiles::new(&site.root, false).expect("files"));
        let burst = (0..64).map(|_| {
            let files = files.clone();
            tokio::spawn(async move { send(&files, get("/data.bin"), "/data.bin").await })
        });
        for answer in futures_util::future::join_all(burst).await {
            let (response, body) = answer.expect("task");
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(body, b"0123456789");
        }
        assert_eq!(files.cache.len(), 1);
    }

    /// An SPA fallback is not kept: the path may become a file.
    #[tokio::test]
    async fn spa_fallbacks_are_not_kept() {
        let site = site();
        let files = StaticFiles::new(&site.root, true).expect("files");
        let (_, body) = send(&files, get("/later.txt"), "/later.txt").await;
        assert_eq!(body, b"<h1>home</h1>");
        std::fs::write(site.root.join("later.txt"), "now a file").expect("write");
        let (_, body) = send(&files, get("/later.txt"), "/later.txt").await;
        assert_eq!(body, b"now a file");
    }

    #[test]
    fn decode_accepts_ordinary_paths() {
        assert_eq!(decode_path("/a%20b/c.txt").as_deref(), Some("/a b/c.txt"));
        assert_eq!(decode_path("/dir/").as_deref(), Some("/dir/"));
        assert_eq!(decode_path("/caf%C3%A9").as_deref(), Some("/café"));
        assert_eq!(
            decode_path("/.well-known/x").as_deref(),
            Some("/.well-known/x")
        );
    }
}
