//! A response body copied to the client as it comes: a `Content-Length`
//! body byte for byte, a chunked body as it is (`chunked.rs` finds its
//! end), a body that runs until the server closes re-chunked; wharf's 502
//! in place of an answer found broken before any of it was sent; and the
//! timed writes and flushes every answer on the fast path goes through.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::LARGE_BUFFER;
use crate::h1::chunked::Chunked;
use crate::h1::head::{self, Extra};
use crate::h1::now_or_pending;
use crate::observe::request;

/// Flushes what was written to the client (TLS holds bytes), waiting at
/// most `timeout`, and the clock read only if it must wait.
pub(in crate::h1) async fn flush<S: AsyncWrite + Unpin>(io: &mut S, timeout: Duration) -> bool {
    let flush = io.flush();
    tokio::pin!(flush);
    match now_or_pending(flush.as_mut()).await {
        Some(flushed) => flushed.is_ok(),
        None => matches!(tokio::time::timeout(timeout, flush).await, Ok(Ok(()))),
    }
}

/// Writes `bytes` to the client within `timeout`.
pub(in crate::h1) async fn write_out<S: AsyncWrite + Unpin>(
    io: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> bool {
    let write = io.write_all(bytes);
    tokio::pin!(write);
    let written = match now_or_pending(write.as_mut()).await {
        Some(written) => written,
        None => match tokio::time::timeout(timeout, write).await {
            Ok(written) => written,
            Err(_) => return false,
        },
    };
    written.is_ok()
}

/// Reads more of the upstream body into an emptied `buf`.
pub(super) async fn read_more(
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Option<usize> {
    buf.clear();
    buf.reserve(LARGE_BUFFER);
    match tokio::time::timeout(timeout, conn.read_buf(buf)).await {
        Ok(Ok(n)) => Some(n),
        _ => None,
    }
}

/// A `Content-Length` body: exactly `length` bytes.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_length<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut out: Vec<u8>,
    mut length: u64,
    read_timeout: Duration,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let take = buf.len().min(usize::try_from(length).unwrap_or(usize::MAX));
    out.extend_from_slice(&buf[..take]);
    buf.advance(take);
    length -= take as u64;
    if !write_out(io, &out, write_timeout).await {
        return false;
    }
    answered.sent(take as u64);
    while length > 0 {
        match read_more(conn, buf, read_timeout).await {
            Some(n) if n > 0 => {}
            _ => return false,
        }
        let take = buf.len().min(usize::try_from(length).unwrap_or(usize::MAX));
        if !write_out(io, &buf[..take], write_timeout).await {
            return false;
        }
        buf.advance(take);
        length -= take as u64;
        answered.sent(take as u64);
    }
    true
}

/// A chunked body, relayed as it is up to its last chunk and trailers.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_chunked<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut out: Vec<u8>,
    extra: &Extra<'_>,
    read_timeout: Duration,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let mut chunked = Chunked::default();
    let Ok((used, mut done)) = chunked.scan(buf) else {
        // Broken before a byte of it was sent: the client can still be
        // told so.
        return broken(io, StatusCode::BAD_GATEWAY, extra, write_timeout, answered).await;
    };
    out.extend_from_slice(&buf[..used]);
    buf.advance(used);
    if !write_out(io, &out, write_timeout).await {
        return false;
    }
    answered.sent(used as u64);
    while !done {
        match read_more(conn, buf, read_timeout).await {
            Some(n) if n > 0 => {}
            _ => return false,
        }
        let Ok((used, end)) = chunked.scan(buf) else {
            return false;
        };
        done = end;
        if !write_out(io, &buf[..used], write_timeout).await {
            return false;
        }
        buf.advance(used);
        answered.sent(used as u64);
    }
    true
}

/// wharf's own answer (a 502 or 504, and the connection closed) in
/// place of an upstream answer found broken before any of it was sent.
/// Returns false: the upstream connection is not reused.
pub(super) async fn broken<S: AsyncWrite + Unpin>(
    io: &mut S,
    status: StatusCode,
    extra: &Extra<'_>,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let mut out = Vec::new();
    let extra = Extra {
        close: true,
        ..*extra
    };
    head::write_status(&mut out, status, &extra, &[]);
    answered.instead(status.as_u16());
    write_out(io, &out, write_timeout).await;
    false
}

/// A body that ends when the server closes: sent to the client chunked.
pub(super) async fn copy_until_close<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut out: Vec<u8>,
    read_timeout: Duration,
    write_timeout: Duration,
    answered: &mut request::Answered,
) -> bool {
    let mut frame = |out: &mut Vec<u8>, data: &[u8]| {
        if !data.is_empty() {
            head::chunk_header(out, data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
            answered.sent(data.len() as u64);
        }
    };
    frame(&mut out, buf);
    buf.clear();
    if !write_out(io, &out, write_timeout).await {
        return false;
    }
    loop {
        match read_more(conn, buf, read_timeout).await {
            Some(0) => break,
            Some(_) => {}
            None => return false,
        }
        out.clear();
        frame(&mut out, buf);
        buf.clear();
        if !write_out(io, &out, write_timeout).await {
            return false;
        }
    }
    write_out(io, b"0\r\n\r\n", write_timeout).await
}
