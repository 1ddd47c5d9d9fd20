//! Do the fixed servers of each upstream (`upstream.NAME.servers`; pools of
//! an `app` are the apps' check) accept a connection within the pool's
//! `connect_timeout`, and, with `[upstream.NAME.health]`, answer the
//! health request with a status in `expect` within `health.timeout`?
//!
//! The health request is what wharf's own check sends: `GET path` over
//! HTTP/1.1 with the server's address as `Host`, through hyper's client
//! (no HTTP is parsed here).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Finding;
use crate::config::{Config, HealthCheck, Upstream};

/// Why a health request got no status.
#[derive(Debug, thiserror::Error)]
enum HealthError {
    #[error("the request cannot be built: {0}")]
    Request(#[from] http::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// One finding per server of every upstream with fixed servers, all
/// servers checked at once.
pub async fn check(config: &Config) -> Vec<Finding> {
    let probes = config
        .upstreams
        .iter()
        .filter(|(_, upstream)| upstream.app.is_none())
        .flat_map(|(name, upstream)| {
            upstream
                .servers
                .iter()
                .map(move |server| probe(name, upstream, server.addr))
        });
    futures_util::future::join_all(probes).await
}

async fn probe(name: &str, upstream: &Upstream, addr: SocketAddr) -> Finding {
    let what = format!("upstream.{name} server {addr}");
    let timeout = upstream.connect_timeout;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Finding::fail(
                what,
                format!("nothing listens on {addr}"),
                format!("start the app or fix upstream.{name}.servers"),
            );
        }
        Ok(Err(error)) => {
            return Finding::fail(
                what,
                format!("cannot connect: {error}"),
                format!("check the address in upstream.{name}.servers and the route to it"),
            );
        }
        Err(_) => {
            return Finding::fail(
                what,
                format!(
                    "no connection within {} (connect_timeout): a firewall drops the packets, or the address is wrong",
                    written(timeout)
                ),
                format!("check upstream.{name}.servers and the firewall between wharf and {addr}"),
            );
        }
    };
    let Some(health) = &upstream.health else {
        return Finding::ok(format!("{what} accepts connections"));
    };
    health_check(name, health, addr, stream).await
}

async fn health_check(
    name: &str,
    health: &HealthCheck,
    addr: SocketAddr,
    stream: TcpStream,
) -> Finding {
    let what = format!("upstream.{name} server {addr}");
    let request = format!("GET {}", health.path);
    let marked_down = "the server answers but would be marked down";
    match tokio::time::timeout(health.timeout, get(stream, addr, &health.path)).await {
        Ok(Ok(status)) if health.expect.contains(status) => {
            Finding::ok(format!("{what} answers {request} with {status}"))
        }
        Ok(Ok(status)) => Finding::warn(
            what,
            format!(
                "{request} answered {status}, not {}: {marked_down}",
                health.expect
            ),
            format!(
                "make {} answer {}, or fix upstream.{name}.health.path or expect",
                health.path, health.expect
            ),
        ),
        Ok(Err(error)) => Finding::warn(
            what,
            format!("{request} failed ({error}): {marked_down}"),
            format!("check that it speaks HTTP/1.1 on this port, or fix upstream.{name}.servers"),
        ),
        Err(_) => Finding::warn(
            what,
            format!(
                "{request} got no answer within {} (health.timeout): {marked_down}",
                written(health.timeout)
            ),
            format!(
                "make {} answer sooner, or raise upstream.{name}.health.timeout",
                health.path
            ),
        ),
    }
}

/// `GET path` on a connected stream; the answer's status.
async fn get(stream: TcpStream, addr: SocketAddr, path: &str) -> Result<u16, HealthError> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "wharf-doctor")
        .body(Empty::new())?;
    let answer = sender.send_request(request).await;
    driver.abort();
    Ok(answer?.status().as_u16())
}

/// A duration as the config writes it ("2s", "500ms").
fn written(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
