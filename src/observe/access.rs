//! The access log: one JSON line per request in Elastic Common Schema field
//! names, ready for Filebeat and Elasticsearch.
//!
//! The line is written when the response body has been sent (or dropped),
//! so `event.duration` and the byte count cover the whole response (see
//! `request.rs`). `http.request.id`, `trace.id` and `span.id` carry the
//! request id and W3C trace context that were sent upstream. Writing
//! goes through a background thread (`tracing_appender::non_blocking`), so
//! the request path never does blocking I/O. A file target can be reopened
//! by its path (`AccessLog::reopen`, on SIGUSR1 and SIGHUP) for log
//! rotation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use http::{Method, Version};
use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use super::trace::Ids;
use crate::config;

/// An open access log sink (or none when `access = "off"`).
pub struct AccessLog {
    target: config::AccessLog,
    sink: Option<(NonBlocking, WorkerGuard)>,
    /// The file the background thread writes to, when the target is a
    /// file: `reopen` swaps it.
    file: Option<(PathBuf, SharedFile)>,
}

/// Why the access log file could not be reopened.
#[derive(Debug, thiserror::Error)]
pub enum ReopenError {
    #[error("cannot reopen the access log {}: {source}; lines keep going to the file it had open; check that its directory exists and wharf may write there", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The access log file, shared between the background writer and
/// `reopen`. The writer takes the lock once per line, so a line goes
/// whole to one file; the request path never touches it.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<File>>);

impl SharedFile {
    fn lock(&self) -> MutexGuard<'_, File> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}

fn open_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("target", &self.target)
            .finish()
    }
}

impl AccessLog {
    /// Opens the target (a file is created and appended to).
    pub fn open(target: &config::AccessLog) -> std::io::Result<AccessLog> {
        let builder = || {
            NonBlockingBuilder::default()
                .lossy(false)
                .thread_name("wharf-access-log")
        };
        let mut file = None;
        let sink = match target {
            config::AccessLog::Off => None,
            config::AccessLog::Stdout => Some(builder().finish(std::io::stdout())),
            config::AccessLog::Stderr => Some(builder().finish(std::io::stderr())),
            config::AccessLog::File(path) => {
                let shared = SharedFile(Arc::new(Mutex::new(open_file(path)?)));
                file = Some((path.clone(), shared.clone()));
                Some(builder().finish(shared))
            }
        };
        Ok(AccessLog {
            target: target.clone(),
            sink,
            file,
        })
    }

    /// Opens the access log file again by its path, for log rotation
    /// (SIGUSR1, SIGHUP): after `mv access.log access.log.1`, lines go to
    /// a new `access.log`. Lines still queued for the background writer
    /// go to the new file; none is lost or written twice. Nothing to do
    /// for stdout, stderr or off (`None`); else the path reopened. On
    /// failure the old file stays in use.
    pub fn reopen(&self) -> Result<Option<&Path>, ReopenError> {
        let Some((path, shared)) = &self.file else {
            return Ok(None);
        };
        let fresh = open_file(path).map_err(|source| ReopenError::Open {
            path: path.clone(),
            source,
        })?;
        let mut current = shared.lock();
        // Whatever the old file still buffers goes to the old file.
        let _ = current.flush();
        *current = fresh;
        Ok(Some(path))
    }

    pub fn target(&self) -> &config::AccessLog {
        &self.target
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    fn write(&self, line: &[u8]) {
        if let Some((writer, _)) = &self.sink {
            let mut writer = writer.clone();
            // The background writer only fails once it has shut down.
            let _ = writer.write_all(line);
        }
    }
}

/// What is known about a request when it arrives.
#[derive(Debug)]
pub struct Entry {
    pub start: Instant,
    pub timestamp: SystemTime,
    pub method: Method,
    pub version: Version,
    pub path: String,
    pub query: Option<String>,
    pub host: Option<String>,
    pub client: SocketAddr,
    pub client_ip: IpAddr,
    pub user_agent: Option<String>,
    /// The `Referer` the client sent (ECS `http.request.referrer`).
    pub referrer: Option<String>,
    /// Request id and trace context, as sent upstream.
    pub ids: Option<Ids>,
}

/// What is known once the response head is ready.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: u16,
    pub upstream: Option<SocketAddr>,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: Event,
    http: Http<'a>,
    url: Url<'a>,
    client: Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<UserAgent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<Upstream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span: Option<Id<'a>>,
}

/// ECS `trace.id` / `span.id`.
#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Event {
    kind: &'static str,
    dataset: &'static str,
    /// Nanoseconds, as ECS specifies.
    duration: u128,
}

#[derive(Serialize)]
struct Http<'a> {
    version: &'static str,
    request: Request<'a>,
    response: Response,
}

#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
}

#[derive(Serialize)]
struct Response {
    status_code: u16,
    body: BodyBytes,
}

#[derive(Serialize)]
struct BodyBytes {
    bytes: u64,
}

#[derive(Serialize)]
struct Url<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct Client {
    ip: IpAddr,
    port: u16,
    address: String,
}

#[derive(Serialize)]
struct UserAgent<'a> {
    original: &'a str,
}

#[derive(Serialize)]
struct Upstream {
    address: String,
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn render(entry: &Entry, outcome: &Outcome, bytes: u64) -> Vec<u8> {
    let line = Line {
        timestamp: humantime::format_rfc3339_millis(entry.timestamp).to_string(),
        event: Event {
            kind: "event",
            dataset: "wharf.access",
            duration: entry.start.elapsed().as_nanos(),
        },
        http: Http {
            version: version_text(entry.version),
            request: Request {
                method: entry.method.as_str(),
                id: entry
                    .ids
                    .as_ref()
                    .and_then(|ids| ids.request_id.to_str().ok()),
                referrer: entry.referrer.as_deref(),
            },
            response: Response {
                status_code: outcome.status,
                body: BodyBytes { bytes },
            },
        },
        url: Url {
            path: &entry.path,
            query: entry.query.as_deref(),
            domain: entry.host.as_deref(),
        },
        client: Client {
            ip: entry.client_ip,
            port: entry.client.port(),
            address: entry.client.ip().to_string(),
        },
        user_agent: entry
            .user_agent
            .as_deref()
            .map(|original| UserAgent { original }),
        upstream: outcome.upstream.map(|addr| Upstream {
            address: addr.to_string(),
        }),
        trace: entry.ids.as_ref().map(|ids| Id { id: ids.trace_id() }),
        span: entry.ids.as_ref().map(|ids| Id { id: ids.span_id() }),
    };
    let mut out = serde_json::to_vec(&line).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Writes the access log line of a finished request.
pub fn write(log: &AccessLog, entry: &Entry, outcome: &Outcome, bytes: u64) {
    log.write(&render(entry, outcome, bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_whose_directory_is_gone_is_not_reopened_and_says_where() {
        let dir = tempfile::tempdir().expect("dir");
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).expect("mkdir");
        let path = logs.join("access.log");
        let log = AccessLog::open(&config::AccessLog::File(path.clone())).expect("open");
        assert_eq!(
            log.reopen().expect("reopen").map(Path::to_path_buf),
            Some(path.clone())
        );
        std::fs::rename(&logs, dir.path().join("old")).expect("move the directory");
        let error = log.reopen().expect_err("no directory to reopen in");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("keep going to the file it had open"),
            "{message}"
        );
        let stdout = AccessLog::open(&config::AccessLog::Stdout).expect("stdout");
        assert!(stdout.reopen().expect("nothing to reopen").is_none());
    }

    #[test]
    fn line_uses_ecs_field_names() {
        let entry = Entry {
            start: Instant::now(),
            timestamp: SystemTime::UNIX_EPOCH,
            method: Method::POST,
            version: Version::HTTP_11,
            path: "/api/x".into(),
            query: Some("a=1".into()),
            host: Some("example.com".into()),
            client: "10.0.0.1:5000".parse().expect("addr"),
            client_ip: "198.51.100.7".parse().expect("ip"),
            user_agent: Some("curl/8".into()),
            referrer: Some("https://shop.example/cart".into()),
            ids: Some(Ids {
                request_id: http::HeaderValue::from_static("req-1"),
                traceparent: http::HeaderValue::from_static(
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            }),
        };
        let outcome = Outcome {
            status: 201,
            upstream: Some("127.0.0.1:9001".parse().expect("addr")),
        };
        let line = render(&entry, &outcome, 42);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["http"]["request"]["method"], "POST");
        assert_eq!(v["http"]["response"]["status_code"], 201);
        assert_eq!(v["http"]["response"]["body"]["bytes"], 42);
        assert_eq!(v["url"]["path"], "/api/x");
        assert_eq!(v["client"]["ip"], "198.51.100.7");
        assert_eq!(v["user_agent"]["original"], "curl/8");
        assert_eq!(
            v["http"]["request"]["referrer"],
            "https://shop.example/cart"
        );
        assert_eq!(v["upstream"]["address"], "127.0.0.1:9001");
        assert!(v["event"]["duration"].is_u64());
        assert_eq!(v["http"]["request"]["id"], "req-1");
        assert_eq!(v["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["span"]["id"], "00f067aa0ba902b7");
        assert_eq!(line.last(), Some(&b'\n'));
    }
}
