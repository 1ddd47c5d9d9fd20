//! Reverse proxying against real backends on loopback: forwarded headers,
//! hop-by-hop stripping, WebSockets, streaming bodies, errors.
//!
//! This file holds the config every test proxies with, the HTTP/2
//! cleartext client, and the scripted backend that answers with exactly
//! the bytes a test gives it.

#[path = "../support/mod.rs"]
mod support;

mod basic_auth;
mod bodies;
mod error_pages;
mod errors;
mod framing;
mod headers;
mod linger;
mod protocols;
mod reuse;
mod route_headers;
mod strip_prefix;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Method;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn proxy_to(addr: std::net::SocketAddr, extra_upstream: &str) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{addr}\"]\n{extra_upstream}\n"
    )
}

fn h2c_client() -> TestClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>()
}

/// A backend that answers each request with the reply its path names,
/// written in the pieces given (each piece its own write, 20 ms apart),
/// and counts the connections it accepted. After a reply marked `close`
/// it closes the connection.
async fn scripted_backend(
    replies: Vec<(&'static str, Vec<&'static [u8]>, bool)>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let replies = std::sync::Arc::new(replies);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let replies = replies.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                    let Some((_, pieces, close)) = replies.iter().find(|(p, _, _)| *p == path)
                    else {
                        return;
                    };
                    for piece in pieces {
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if *close {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}
