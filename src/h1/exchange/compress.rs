//! A compressible answer to a client that accepts compression: whole, in
//! one call, when it is short and its length known (`copy_encoded`), else
//! decoded and streamed through the sites' compression layer
//! (`copy_compressed`), then sent chunked.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::HeaderValue;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use super::copy::{broken, read_more, write_out};
use super::MAX_RESPONSE_HEAD;
use crate::encode;
use crate::h1::chunked::Chunked;
use crate::h1::head::{self, Extra, Framing, ResponseHead, ResponseParse};
use crate::h1::now_or_pending;
use crate::observe::request;

/// A compressible answer of known, small length (`encode::ONE_SHOT`) for a
/// client that accepts compression: read whole, compressed in one call
/// with the encoding the compression layer would choose, and sent with its
/// length in one write. The headers change as the layer changes them.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_encoded<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    response: &ResponseHead,
    (length, encoding): (u64, encode::Encoding),
    extra: &Extra<'_>,
    (read_timeout, write_timeout): (Duration, Duration),
    answered: &mut request::Answered,
) -> bool {
    // `ONE_SHOT` bounds it, so this fits in memory.
    let Ok(body_len) = usize::try_from(length) else {
        return false;
    };
    let end = response.len + body_len;
    while buf.len() < end {
        buf.reserve(end - buf.len());
        // Nothing was sent yet: a body cut short or stalled is answered
        // as a failed attempt would be.
        let status = match tokio::time::timeout(read_timeout, conn.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => continue,
            Ok(_) => StatusCode::BAD_GATEWAY,
            Err(_) => StatusCode::GATEWAY_TIMEOUT,
        };
        return broken(io, status, extra, write_timeout, answered).await;
    }
    let body = &buf[response.len..end];
    let compressed = match encoding {
        encode::Encoding::Identity => None,
        encoding => match encode::compress(encoding, body) {
            Ok(compressed) => Some(compressed),
            Err(error) => {
                tracing::warn!(error = %error, "compressing an upstream answer failed; sent as it is");
                None
            }
        },
    };
    let mut out = Vec::new();
    let parts = compressed
        .as_ref()
        .and_then(|_| head::response_parts(&buf[..response.len], extra));
    let sent = match (compressed, parts) {
        (Some(compressed), Some((mut parts, reason))) => {
            encode::mark(&mut parts.headers, encoding);
            out.reserve(compressed.len() + 512);
            head::write_compressed_head(&mut out, &parts, &reason, Some(compressed.len()), extra);
            out.extend_from_slice(&compressed);
            compressed.len()
        }
        _ => {
            // Sent as it is: the head as the fast path writes it (with
            // `Vary`), then the body.
            let plain = Extra {
                compress: false,
                ..*extra
            };
            if !matches!(
                head::parse_response(&buf[..response.len], MAX_RESPONSE_HEAD, &plain, &mut out),
                Ok(ResponseParse::Complete(_))
            ) {
                return false;
            }
            out.extend_from_slice(body);
            body.len()
        }
    };
    buf.advance(end);
    answered.sent(sent as u64);
    write_out(io, &out, write_timeout).await
}

/// An upstream body without its framing, read as the compression layer
/// asks for it. `done` is set once the body has been read to its end.
fn decoded_body<'a>(
    conn: &'a mut TcpStream,
    buf: &'a mut BytesMut,
    framing: Framing,
    read_timeout: Duration,
    done: &'a std::sync::atomic::AtomicBool,
) -> impl http_body::Body<Data = Bytes, Error = std::io::Error> + 'a {
    use std::sync::atomic::Ordering::Relaxed;
    enum Left {
        Bytes(u64),
        Chunked(Chunked),
        UntilClose,
    }
    let left = match framing {
        Framing::Length(n) => Left::Bytes(n),
        Framing::Chunked => Left::Chunked(Chunked::default()),
        Framing::Close => Left::UntilClose,
        Framing::Empty => Left::Bytes(0),
    };
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let frames =
        futures_util::stream::unfold((conn, buf, left), move |(conn, buf, mut left)| async move {
            loop {
                if done.load(Relaxed) {
                    return None;
                }
                let data = match &mut left {
                    Left::Bytes(0) => {
                        done.store(true, Relaxed);
                        continue;
                    }
                    Left::Bytes(n) => {
                        let take = buf.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                        *n -= take as u64;
                        buf.split_to(take).freeze()
                    }
                    Left::Chunked(chunked) => {
                        let mut data = BytesMut::new();
                        let input = &buf[..];
                        match chunked.decode(input, |range| data.extend_from_slice(&input[range])) {
                            Ok((used, end)) => {
                                buf.advance(used);
                                done.store(end, Relaxed);
                            }
                            Err(error) => {
                                let error = invalid(&error.to_string());
                                return Some((Err(error), (conn, buf, left)));
                            }
                        }
                        data.freeze()
                    }
                    Left::UntilClose => buf.split().freeze(),
                };
                if !data.is_empty() {
                    return Some((Ok(http_body::Frame::data(data)), (conn, buf, left)));
                }
                if done.load(Relaxed) {
                    return None;
                }
                match read_more(conn, buf, read_timeout).await {
                    Some(0) if matches!(left, Left::UntilClose) => done.store(true, Relaxed),
                    Some(0) => {
                        let error = invalid("the upstream closed the connection inside the body");
                        return Some((Err(error), (conn, buf, left)));
                    }
                    Some(_) => {}
                    None => {
                        let error = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "reading the upstream body failed or timed out",
                        );
                        return Some((Err(error), (conn, buf, left)));
                    }
                }
            }
        });
    // Fused: the compression layer may ask again after the end.
    http_body_util::StreamBody::new(futures_util::StreamExt::fuse(frames))
}

/// A compressible answer for a client that accepts compression: through
/// the sites' compression layer (`site::compress`), sent chunked. The
/// upstream body is read to its end, so its connection can be reused.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_compressed<S: AsyncWrite + Unpin>(
    io: &mut S,
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    response: &ResponseHead,
    accept_encoding: Vec<HeaderValue>,
    extra: &Extra<'_>,
    (read_timeout, write_timeout): (Duration, Duration),
    answered: &mut request::Answered,
) -> bool {
    use http_body_util::BodyExt;
    use std::sync::atomic::Ordering::Relaxed;
    /// Compressed output ready at once is gathered up to this size.
    const WRITE_AT: usize = 16 * 1024;

    let parts = head::response_parts(&buf[..response.len], extra);
    buf.advance(response.len);
    let Some((parts, reason)) = parts else {
        // A header the HeaderMap cannot hold (hyper would refuse it too).
        let mut out = Vec::new();
        head::write_status(
            &mut out,
            StatusCode::BAD_GATEWAY,
            &Extra {
                close: true,
                ..*extra
            },
            &[],
        );
        write_out(io, &out, write_timeout).await;
        return false;
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let body = decoded_body(conn, buf, response.framing, read_timeout, &done);
    let Some(compressed) =
        crate::site::compress(accept_encoding, http::Response::from_parts(parts, body)).await
    else {
        return false;
    };
    let (parts, body) = compressed.into_parts();
    let mut out = Vec::with_capacity(WRITE_AT + 512);
    head::write_compressed_head(&mut out, &parts, &reason, None, extra);
    let mut body = std::pin::pin!(body);
    loop {
        let frame = body.frame();
        tokio::pin!(frame);
        let frame = match now_or_pending(frame.as_mut()).await {
            Some(frame) => frame,
            None => {
                // Nothing more for now: what is compressed so far goes out
                // (an event stream must not wait for the next event).
                if !out.is_empty() {
                    if !write_out(io, &out, write_timeout).await {
                        return false;
                    }
                    out.clear();
                }
                frame.await
            }
        };
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref().filter(|data| !data.is_empty()) {
                    head::chunk_header(&mut out, data.len());
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                    answered.sent(data.len() as u64);
                }
            }
            Some(Err(error)) => {
                // The client sees a body cut short, as on the general path.
                tracing::warn!(error = %error, "compressing an upstream answer failed");
                write_out(io, &out, write_timeout).await;
                return false;
            }
            None => break,
        }
        if out.len() >= WRITE_AT {
            if !write_out(io, &out, write_timeout).await {
                return false;
            }
            out.clear();
        }
    }
    out.extend_from_slice(b"0\r\n\r\n");
    write_out(io, &out, write_timeout).await && done.load(Relaxed)
}
