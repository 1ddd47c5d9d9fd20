//! Guard 2 of static serving and the validators: the exact file
//! `ServeDir` used found again, canonicalized and checked to lie under the
//! root, its strong `ETag` made from size and mtime, and `If-None-Match`
//! answered with a 304.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use tower_http::services::fs::ServeFileSystemResponseBody;

use super::cache;
use crate::body::{self, Body};
use crate::route::headers::RouteHeaders;

/// Mirrors ServeDir's choice: a directory means its `index.html`; a content
/// encoding means the `.gz`/`.br` sibling; a missing file in SPA mode means
/// the root `index.html` fallback.
/// Also says whether the file is that fallback.
pub(super) fn served_file(
    root: &Path,
    base: PathBuf,
    extension: Option<&str>,
    spa: bool,
) -> (PathBuf, bool) {
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
pub(super) fn checked_etag(
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

/// Adds ETag and Vary (and the route's headers), and turns a matching
/// If-None-Match into a 304.
pub(super) fn finish(
    response: Response<ServeFileSystemResponseBody>,
    etag: HeaderValue,
    if_none_match: Option<&HeaderValue>,
    route: Option<&RouteHeaders>,
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
        utf8_text(headers);
    }
    if let Some(route) = route {
        route.apply(response.status().as_u16(), response.headers_mut());
    }
    response
}

/// Text and scripts say they are UTF-8, as Caddy's answers do (nginx needs
/// `charset utf-8;`): without it a browser guesses, windows-1252 for a page
/// with no `<meta charset>`, and every non-ASCII character turns to
/// mojibake. A `.js` file is `text/javascript`, a `.mjs` one
/// `application/javascript`; JSON is UTF-8 by definition and has no
/// charset parameter (RFC 8259).
fn utf8_text(headers: &mut HeaderMap) {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return;
    };
    let bytes = value.as_bytes();
    let text = bytes.starts_with(b"text/") || bytes == b"application/javascript";
    if text && !bytes.contains(&b';') {
        let mut with = Vec::with_capacity(bytes.len() + 15);
        with.extend_from_slice(bytes);
        with.extend_from_slice(b"; charset=utf-8");
        if let Ok(with) = HeaderValue::from_bytes(&with) {
            headers.insert(header::CONTENT_TYPE, with);
        }
    }
}

/// Weak comparison (RFC 9110 8.8.3.2) against a list of entity tags.
pub(super) fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
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
