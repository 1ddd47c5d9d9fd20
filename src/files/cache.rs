//! Small static files kept in memory, so a hot file is answered without
//! the blocking-pool round trips `ServeDir` makes to open, stat and read it
//! (each a hand-off to another thread and back: about 60 µs per request
//! for a 2.4 KB file on one core, against nginx's 6).
//!
//! Only a plain `GET` is answered from here: with `Range`, `If-Range`,
//! `If-Modified-Since` or `If-Unmodified-Since` the request goes to
//! `ServeDir` as before; `If-None-Match` is answered here (304) with the
//! file's own ETag. The key is the decoded path and the request's
//! `Accept-Encoding` (which decides the `.br`/`.gz` sibling `ServeDir`
//! picks). What is kept is the full answer `ServeDir` and `finish` built.
//!
//! A kept answer is trusted for [`FRESH_FOR`]; after that the first
//! request stats the file (size, mtime, inode) on the blocking pool (the
//! others meanwhile are answered as before) and drops the answer if
//! anything changed, so an edited or replaced file is
//! served within a second (nginx's `open_file_cache_valid` is 60 s). The
//! cache is per route and per config: a reload starts empty. It holds
//! files up to [`MAX_FILE`] bytes, [`MAX_BYTES`] in all.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::body::{self, Body};
use crate::encode;
use crate::route::headers::RouteHeaders;

/// How long a kept answer is served without looking at the file.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Largest file kept.
pub const MAX_FILE: u64 = 256 * 1024;
/// Most bytes kept per route; when full, the cache starts over.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// The decoded path and the request's `Accept-Encoding`.
pub type Key = (String, Vec<u8>);

/// What identifies the version of a file that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Validator {
    pub fn of(path: PathBuf, metadata: &std::fs::Metadata) -> Validator {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Validator {
            path,
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode,
        }
    }

    /// Whether the file is still the one that was read.
    fn still_current(&self) -> bool {
        std::fs::metadata(&self.path)
            .is_ok_and(|metadata| Validator::of(self.path.clone(), &metadata) == *self)
    }
}

/// One kept answer.
pub struct Entry {
    headers: HeaderMap,
    body: Bytes,
    etag: HeaderValue,
    validator: Validator,
    checked: Mutex<Instant>,
}

impl Entry {
    /// The kept answer, or a 304 when `If-None-Match` names its ETag.
    /// `route`: the route's headers, which a 304 carries too.
    pub fn respond(
        &self,
        if_none_match: Option<&HeaderValue>,
        route: Option<&RouteHeaders>,
    ) -> Response<Body> {
        if if_none_match.is_some_and(|value| super::etag_matches(value, &self.etag)) {
            let mut response = Response::new(body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            let headers = response.headers_mut();
            for name in [header::LAST_MODIFIED, header::ETAG, header::VARY] {
                if let Some(value) = self.headers.get(&name) {
                    headers.insert(name, value.clone());
                }
            }
            if let Some(route) = route {
                route.apply(304, headers);
            }
            return response;
        }
        let mut response = Response::new(body::full(self.body.clone()));
        *response.headers_mut() = self.headers.clone();
        response
    }

    /// The length of the kept body.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// [`Entry::respond`] as HTTP/1.1 for the fast path (`h1::kept`): the
    /// status line and headers, without the blank line that ends them,
    /// are appended to `out`; returns the status and the body to send.
    /// `route`: the route's headers, which a 304 carries too.
    pub fn write_h1(
        &self,
        out: &mut Vec<u8>,
        if_none_match: Option<&HeaderValue>,
        route: Option<&RouteHeaders>,
    ) -> (u16, Bytes) {
        let not_modified =
            if_none_match.is_some_and(|value| super::etag_matches(value, &self.etag));
        if not_modified {
            out.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\n");
            for name in [header::LAST_MODIFIED, header::ETAG, header::VARY] {
                let replaced = route.is_some_and(|route| route.replaces(name.as_str().as_bytes()));
                if let Some(value) = self.headers.get(&name).filter(|_| !replaced) {
                    write_field(out, name.as_str().as_bytes(), value.as_bytes());
                }
            }
            if let Some(route) = route {
                route.write(out);
            }
            return (304, Bytes::new());
        }
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for (name, value) in &self.headers {
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        (200, self.body.clone())
    }
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The key for a request the cache may answer: a `GET` without the
/// conditions and ranges only `ServeDir` handles.
pub fn key<B>(req: &Request<B>, decoded: &str) -> Option<Key> {
    if req.method() != Method::GET {
        return None;
    }
    let fields = || {
        req.headers()
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
    };
    key_from_fields(decoded.to_string(), fields)
}

/// Headers whose request only `ServeDir` answers.
const NOT_KEPT: [&[u8]; 4] = [
    b"range",
    b"if-range",
    b"if-modified-since",
    b"if-unmodified-since",
];

/// [`key`] from a `GET`'s header fields as `(name, value)` (names in any
/// case; `fields` lists them anew each call), for the HTTP/1.1 fast path,
/// which has no `Request`.
pub fn key_from_fields<'a, I>(decoded: String, fields: impl Fn() -> I) -> Option<Key>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    let conditional = fields().any(|(name, _)| {
        NOT_KEPT
            .iter()
            .any(|refused| name.eq_ignore_ascii_case(refused))
    });
    if conditional {
        return None;
    }
    let mut accept = Vec::new();
    for (name, value) in fields() {
        if name.eq_ignore_ascii_case(b"accept-encoding") {
            accept.extend_from_slice(value);
            accept.push(b'\n');
        }
    }
    Some((decoded, accept))
}

/// Whether `response` is a whole file small enough to keep.
pub fn worth_keeping(response: &Response<Body>) -> bool {
    response.status() == StatusCode::OK
        && content_length(response.headers()).is_some_and(|len| len <= MAX_FILE)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.entries();
        f.debug_struct("Cache")
            .field("files", &entries.map.len())
            .field("bytes", &entries.bytes)
            .finish()
    }
}

/// The answer compressed once, as the site's stack would compress it
/// for this key's `Accept-Encoding` (`site::compress_whole`), so a kept
/// answer is not compressed again for every request.
fn compressed(key: &Key, parts: &mut http::response::Parts, body: Bytes) -> Bytes {
    use tower_http::compression::predicate::Predicate;
    let accept = key
        .1
        .split(|&b| b == b'\n')
        .filter(|value| !value.is_empty());
    let encoding = encode::negotiate(accept);
    if encoding == encode::Encoding::Identity
        || parts.headers.contains_key(header::CONTENT_ENCODING)
    {
        return body;
    }
    let mut probe = Response::new(http_body_util::Full::new(body.clone()));
    *probe.status_mut() = parts.status;
    *probe.headers_mut() = parts.headers.clone();
    if !crate::site::Compressible::default().should_compress(&probe) {
        return body;
    }
    match encode::compress(encoding, &body) {
        Ok(compressed) => {
            encode::mark(&mut parts.headers, encoding);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
            Bytes::from(compressed)
        }
        Err(error) => {
            tracing::warn!(error = %error, "compressing a static file failed");
            body
        }
    }
}

/// How many plain GETs of one route may read files at once; the others
/// wait, then usually find the file kept.
const READERS: usize = 8;

/// The kept answers of one static route.
pub struct Cache {
    fresh_for: Duration,
    entries: Mutex<Entries>,
    readers: tokio::sync::Semaphore,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Arc<Entry>>,
    bytes: usize,
}

impl Cache {
    pub fn new(fresh_for: Duration) -> Cache {
        Cache {
            fresh_for,
            entries: Mutex::new(Entries::default()),
            readers: tokio::sync::Semaphore::new(READERS),
        }
    }

    /// A turn to read a file for a plain GET (`READERS` at once). `None`
    /// never happens (the semaphore is never closed); then nobody waits.
    pub async fn loading(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.readers.acquire().await.ok()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map half
        // updated in a way that matters: every update is one insert or
        // remove.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kept answer for `key` if the file has not changed.
    pub async fn lookup(&self, key: &Key) -> Option<Arc<Entry>> {
        let entry = self.entries().map.get(key).cloned()?;
        let fresh = {
            let mut checked = entry
                .checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let fresh = checked.elapsed() < self.fresh_for;
            if !fresh {
                // This request checks the file; the ones arriving meanwhile
                // are answered as before, so a busy file costs one stat per
                // `fresh_for`, not one per request (and a blocking thread).
                *checked = Instant::now();
            }
            fresh
        };
        if fresh {
            return Some(entry);
        }
        let validator = entry.validator.clone();
        let current = tokio::task::spawn_blocking(move || validator.still_current())
            .await
            .unwrap_or(false);
        if current {
            return Some(entry);
        }
        let mut entries = self.entries();
        if let Some(gone) = entries.map.remove(key) {
            entries.bytes = entries.bytes.saturating_sub(gone.body.len());
        }
        None
    }

    /// Reads the body of `response` (a whole file, [`worth_keeping`]),
    /// keeps the answer, and returns it.
    pub async fn keep(
        &self,
        key: Key,
        response: Response<Body>,
        etag: HeaderValue,
        validator: Validator,
    ) -> Response<Body> {
        let (mut parts, mut body) = response.into_parts();
        let mut read = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => read.extend_from_slice(&frame.into_data().unwrap_or_default()),
                Err(error) => {
                    tracing::warn!(file = %validator.path.display(), error = %error, "reading static file failed");
                    return super::plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n");
                }
            }
            if read.len() as u64 > MAX_FILE {
                break;
            }
        }
        if Some(read.len() as u64) != content_length(&parts.headers) {
            // Changed while being read: neither kept nor sent torn.
            return super::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "file changed while read\n",
            );
        }
        let body = compressed(&key, &mut parts, read.freeze());
        let entry = Arc::new(Entry {
            headers: parts.headers.clone(),
            body: body.clone(),
            etag,
            validator,
            checked: Mutex::new(Instant::now()),
        });
        {
            let mut entries = self.entries();
            if entries.bytes + body.len() > MAX_BYTES {
                entries.map.clear();
                entries.bytes = 0;
            }
            entries.bytes += body.len();
            if let Some(old) = entries.map.insert(key, entry) {
                entries.bytes = entries.bytes.saturating_sub(old.body.len());
            }
        }
        Response::from_parts(parts, body::full(body))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries().map.len()
    }
}
