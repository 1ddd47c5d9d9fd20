//! Captured output of app instances: every line of stdout/stderr becomes a
//! JSON line with app, instance, pid and stream. A line that is itself a
//! JSON object keeps its fields (merged, not double-encoded); other lines
//! go in `message`. Lines go to wharf's stdout or a size-rotated file,
//! written by a background thread so no task blocks on I/O.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::config::AppLog;

/// Rotate a log file when it passes this size; keep this many old files.
const ROTATE_AT: u64 = 16 * 1024 * 1024;
const KEEP: usize = 3;
/// Longer lines are cut (a runaway line must not eat memory).
const MAX_LINE: usize = 64 * 1024;

/// Where one app's output goes.
pub struct Sink {
    writer: Option<NonBlocking>,
    _guard: Option<WorkerGuard>,
}

impl Sink {
    pub fn open(target: &AppLog) -> std::io::Result<Sink> {
        let builder = || {
            NonBlockingBuilder::default()
                .lossy(false)
                .thread_name("wharf-app-log")
        };
        let (writer, guard) = match target {
            AppLog::Off => {
                return Ok(Sink {
                    writer: None,
                    _guard: None,
                })
            }
            AppLog::Stdout => builder().finish(std::io::stdout()),
            AppLog::File(path) => builder().finish(Rotating::open(path)?),
        };
        Ok(Sink {
            writer: Some(writer),
            _guard: Some(guard),
        })
    }

    fn write(&self, line: &[u8]) {
        if let Some(writer) = &self.writer {
            let _ = writer.clone().write_all(line);
        }
    }
}

/// Identifies the lines of one process.
#[derive(Debug, Clone)]
pub struct Origin {
    pub app: String,
    pub instance: u32,
    pub pid: u32,
}

/// Reads `stream` line by line until EOF, writing each line to `sink`.
pub async fn capture<R: AsyncRead + Unpin>(
    stream: R,
    name: &'static str,
    origin: Origin,
    sink: std::sync::Arc<Sink>,
) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buffer)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer);
                let text = text.trim_end_matches(['\n', '\r']);
                sink.write(&render(&origin, name, text));
            }
        }
    }
}

fn render(origin: &Origin, stream: &str, text: &str) -> Vec<u8> {
    let mut fields = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        _ => {
            let mut map = Map::new();
            map.insert("message".into(), Value::String(text.to_string()));
            map
        }
    };
    fields.entry("@timestamp").or_insert_with(|| {
        Value::String(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string())
    });
    fields.insert(
        "wharf".into(),
        serde_json::json!({
            "app": origin.app,
            "instance": origin.instance,
            "pid": origin.pid,
            "stream": stream,
        }),
    );
    let mut line = serde_json::to_vec(&Value::Object(fields)).unwrap_or_default();
    line.push(b'\n');
    line
}

/// A file that rotates itself by size: `app.log` -> `app.log.1` ...
struct Rotating {
    path: PathBuf,
    file: File,
    size: u64,
}

impl Rotating {
    fn open(path: &Path) -> std::io::Result<Rotating> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Rotating {
            path: path.to_path_buf(),
            file,
            size,
        })
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        for i in (1..KEEP).rev() {
            let from = self.path.with_extension(format!("log.{i}"));
            let to = self.path.with_extension(format!("log.{}", i + 1));
            let _ = std::fs::rename(from, to);
        }
        std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for Rotating {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.size + buf.len() as u64 > ROTATE_AT {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            app: "web".into(),
            instance: 1,
            pid: 42,
        }
    }

    #[test]
    fn plain_lines_go_in_message() {
        let line = render(&origin(), "stderr", "listening on :9001");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["message"], "listening on :9001");
        assert_eq!(v["wharf"]["app"], "web");
        assert_eq!(v["wharf"]["instance"], 1);
        assert_eq!(v["wharf"]["pid"], 42);
        assert_eq!(v["wharf"]["stream"], "stderr");
    }

    #[test]
    fn json_lines_keep_their_fields() {
        let line = render(
            &origin(),
            "stdout",
            r#"{"level":"info","msg":"hi","latency":3}"#,
        );
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["level"], "info");
        assert_eq!(v["latency"], 3);
        assert!(v.get("message").is_none(), "not double-encoded");
    }
}
