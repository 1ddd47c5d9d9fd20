//! The `wharf echo` backend: a tiny HTTP server that reports what reached it.
//!
//! Job: stand in for an app behind the proxy, in tests and when debugging
//! what the proxy forwards. It serves HTTP/1.1 and h2c (prior knowledge) on
//! one listener, plus WebSocket.
//!
//! In: any request, any method, any path. Out, by default, a JSON report:
//!
//! ```json
//! {"method": "GET", "path": "/a", "query": "x=1",
//!  "headers": {"host": "…", "x-many": ["1", "2"]},
//!  "peer": "127.0.0.1:50312", "port": 8081, "body_bytes": 0}
//! ```
//!
//! `query` is `null` when there is none; a header seen once is a string,
//! seen more often an array; `port` is the echo server's own port (to tell
//! backends of a pool apart); `body_bytes` counts the request body, read as
//! a stream.
//!
//! Query parameters change the answer (several may be combined):
//! - `?sleep=<ms>` waits that long before answering (timeouts, draining).
//! - `?status=<code>` answers with that status (200..=999; 1xx is refused).
//! - `?bytes=<n>` answers with `n` bytes of `application/octet-stream`
//!   instead of JSON, generated chunk by chunk (large-download tests).
//!
//! A WebSocket upgrade on any path is accepted and every text or binary
//! message is sent back unchanged.
//!
//! Must not: buffer a request or response body whole (sizes are up to the
//! test, 1 GiB must cost nothing), or outlive its future: dropping the
//! future returned by [`serve`] stops the listener and every connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Serves the echo backend on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let app = Router::new().fallback(echo).with_state(port);
    // Owning the connection tasks here means dropping this future aborts them.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually out of file descriptors; back off instead of spinning.
                tracing::warn!(error = %error, "echo: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(Body::new))
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(peer = %peer, error = %error, "echo: connection ended with an error");
            }
        });
    }
}

/// The options carried in the query string.
#[derive(Debug, Default, PartialEq)]
struct Options {
    sleep: Option<Duration>,
    status: Option<StatusCode>,
    bytes: Option<u64>,
}

impl Options {
    /// Unknown parameters are ignored (they belong to whatever is being
    /// tested); a known one with a bad value is an error naming it.
    fn parse(query: Option<&str>) -> Result<Options, String> {
        let mut options = Options::default();
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || format!("echo: bad value {value:?} for {name}\n");
            match name {
                "sleep" => {
                    let ms = value.parse().map_err(|_| bad())?;
                    options.sleep = Some(Duration::from_millis(ms));
                }
                "status" => {
                    let code = value.parse::<u16>().map_err(|_| bad())?;
                    let status = StatusCode::from_u16(code).map_err(|_| bad())?;
                    if status.is_informational() {
                        return Err(bad());
                    }
                    options.status = Some(status);
                }
                "bytes" => options.bytes = Some(value.parse().map_err(|_| bad())?),
                _ => {}
            }
        }
        Ok(options)
    }
}

async fn echo(
    State(port): State<u16>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    req: Request,
) -> Response {
    let options = match Options::parse(req.uri().query()) {
        Ok(options) => options,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    if let Some(sleep) = options.sleep {
        tokio::time::sleep(sleep).await;
    }
    if let Ok(upgrade) = upgrade {
        return upgrade.on_upgrade(echo_messages);
    }

    let (parts, body) = req.into_parts();
    let body_bytes = match count_body(body).await {
        Ok(count) => count,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let status = options.status.unwrap_or(StatusCode::OK);
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        // These answers have no body (RFC 9110 15.3.5, 15.4.5).
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        return response;
    }
    if let Some(length) = options.bytes {
        let mut response = Response::new(Body::new(Filler { remaining: length }));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        return response;
    }

    let report = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers_json(&parts.headers),
        "peer": peer.to_string(),
        "port": port,
        "body_bytes": body_bytes,
    });
    let mut response = Response::new(Body::from(report.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Reads the body frame by frame, keeping only the count.
async fn count_body(mut body: Body) -> Result<u64, String> {
    let mut count = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| format!("echo: reading the body failed: {error}\n"))?;
        if let Some(data) = frame.data_ref() {
            count += data.len() as u64;
        }
    }
    Ok(count)
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut seen: HashMap<&str, Vec<Value>> = HashMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        seen.entry(name.as_str())
            .or_default()
            .push(Value::String(value));
    }
    let map: Map<String, Value> = seen
        .into_iter()
        .map(|(name, mut values)| {
            let value = if values.len() == 1 {
                values.remove(0)
            } else {
                Value::Array(values)
            };
            (name.to_owned(), value)
        })
        .collect();
    Value::Object(map)
}

async fn echo_messages(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            Message::Text(_) | Message::Binary(_) => {
                if socket.send(message).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => return,
            // Pings are answered by the library.
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// One shared chunk; every data frame is a slice of it, so a body of any
/// length allocates nothing per chunk.
static CHUNK: [u8; 64 * 1024] = [b'.'; 64 * 1024];

/// A body of `remaining` filler bytes with an exact size hint.
struct Filler {
    remaining: u64,
}

impl http_body::Body for Filler {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let length = usize::try_from(self.remaining).map_or(CHUNK.len(), |n| n.min(CHUNK.len()));
        self.remaining -= length as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..length])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests;
