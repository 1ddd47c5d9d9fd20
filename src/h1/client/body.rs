//! A response body read from its upstream socket as the client takes it:
//! by length, chunked (with trailers) or until close, the socket put back
//! in the server's idle pool when the body ended where its framing said.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::net::TcpStream;

use crate::balance::state::ServerState;
use crate::h1::chunked::{ChunkError, Chunked};

/// Room asked for before each read of a long body.
const BODY_READ: usize = 16 * 1024;

/// Why a response body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the response body: {0}")]
    Read(io::Error),
    #[error("the upstream closed the connection {left} bytes before the body's end")]
    Truncated { left: u64 },
    #[error("the upstream closed the connection inside a chunked body")]
    TruncatedChunked,
    #[error("malformed chunked body: {0}")]
    Chunk(#[from] ChunkError),
}

/// What is left of a response body.
#[derive(Debug)]
pub(super) enum Left {
    /// This many bytes (some may be in the buffer already).
    Length(u64),
    Chunked(Box<Chunked>),
    /// Until the server closes the connection.
    Close,
    /// The body's data ended; its trailer fields are next.
    Trailers(http::HeaderMap),
    Done,
}

/// A response body read from its upstream socket as the client takes it.
/// The socket goes back to the server's idle pool when the body ended
/// where its framing said and nothing followed it; dropped earlier (the
/// client left), the socket is closed.
#[derive(Debug)]
pub struct BareBody {
    pub(super) conn: Option<TcpStream>,
    /// Bytes read from the socket and not yet handed on.
    pub(super) buf: BytesMut,
    pub(super) left: Left,
    pub(super) reusable: bool,
    pub(super) state: Arc<ServerState>,
}

impl BareBody {
    /// The body ended: the socket goes back to the pool when it can carry
    /// another request.
    pub(super) fn finish(&mut self) {
        self.left = Left::Done;
        if let Some(conn) = self.conn.take() {
            if self.reusable && self.buf.is_empty() {
                self.state.idle.put(conn, Instant::now());
            }
        }
    }

    /// Reads more from the socket into `buf`; `Ok(0)` at its end. Through
    /// `AsyncRead`, which forgets the socket's readiness after a short
    /// read, so that the idle pool's check sees a quiet socket as open.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(BODY_READ);
        }
        tokio_util::io::poll_read_buf(Pin::new(conn), cx, &mut self.buf)
    }

    /// The chunk data in the buffer, without the framing (`None` when the
    /// buffer held framing only), and whether the body ended. One piece of
    /// data is handed on as a slice of the buffer; several (small chunks
    /// read at once) are joined.
    fn decode(
        buf: &mut BytesMut,
        decoder: &mut Chunked,
    ) -> Result<(Option<Bytes>, bool), ChunkError> {
        let mut first: Option<Range<usize>> = None;
        let mut joined: Option<BytesMut> = None;
        let input: &[u8] = buf;
        let (used, done) = decoder.decode(input, |piece| {
            if piece.is_empty() {
                return;
            }
            if let Some(joined) = joined.as_mut() {
                joined.extend_from_slice(&input[piece]);
            } else if let Some(first) = first.take() {
                let mut both = BytesMut::with_capacity(first.len() + piece.len());
                both.extend_from_slice(&input[first]);
                both.extend_from_slice(&input[piece]);
                joined = Some(both);
            } else {
                first = Some(piece);
            }
        })?;
        let consumed = buf.split_to(used).freeze();
        let data = match (joined, first) {
            (Some(joined), _) => Some(joined.freeze()),
            (None, Some(first)) => Some(consumed.slice(first)),
            (None, None) => None,
        };
        Ok((data, done))
    }
}

impl http_body::Body for BareBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.left {
                Left::Done => return Poll::Ready(None),
                Left::Trailers(trailers) => {
                    let trailers = std::mem::take(trailers);
                    this.left = Left::Done;
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Left::Length(left) => {
                    if !this.buf.is_empty() {
                        let take = this
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        let data = this.buf.split_to(take).freeze();
                        *left -= take as u64;
                        if *left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let left = *left;
                    match ready!(this.poll_fill(cx)) {
                        Ok(0) => {
                            this.reusable = false;
                            this.finish();
                            return Poll::Ready(Some(Err(BodyError::Truncated { left })));
                        }
                        Ok(_) => {}
                        Err(error) => return Poll::Ready(Some(Err(this.failed(error)))),
                    }
                }
                Left::Chunked(decoder) => {
                    if !this.buf.is_empty() {
                        let decoded = BareBody::decode(&mut this.buf, decoder);
                        match decoded {
                            Ok((data, done)) => {
                                if done {
                                    let trailers = decoder.trailers();
                                    this.finish();
                                    if let Some(trailers) = trailers {
                                        this.left = Left::Trailers(trailers);
                                    }
                                }
                                match data {
                                    Some(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                                    None if done => continue,
                                    None => {}
                                }
                            }
                            Err(error) => {
                                this.reusable = false;
                                this.finish();
                                return Poll::Ready(Some(Err(error.into())));
                            }
                        }
                        if !this.buf.is_empty() {
                            continue;
                        }
                    }
                    match ready!(this.poll_fill(cx)) {
                        Ok(0) => {
                            this.reusable = false;
                            this.finish();
                            return Poll::Ready(Some(Err(BodyError::TruncatedChunked)));
                        }
                        Ok(_) => {}
                        Err(error) => return Poll::Ready(Some(Err(this.failed(error)))),
                    }
                }
                Left::Close => {
                    if !this.buf.is_empty() {
                        let data = this.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    match ready!(this.poll_fill(cx)) {
                        Ok(0) => {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Ok(_) => {}
                        Err(error) => return Poll::Ready(Some(Err(this.failed(error)))),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.left, Left::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Left::Length(left) => SizeHint::with_exact(left),
            Left::Done | Left::Trailers(_) => SizeHint::with_exact(0),
            Left::Chunked(_) | Left::Close => SizeHint::default(),
        }
    }
}

impl BareBody {
    /// A read error: the socket is closed, never reused.
    fn failed(&mut self, error: io::Error) -> BodyError {
        self.reusable = false;
        self.finish();
        BodyError::Read(error)
    }
}
