//! Where a chunked message body ends, for bodies relayed byte for byte, and
//! its data, for bodies that are compressed on the way.
//!
//! The fast path passes an upstream's chunked body to the client as it is
//! (chunk sizes, extensions and trailers included); it only needs to know
//! which bytes belong to the body, so that the connection can be reused.
//! A body it compresses is decoded first (`Chunked::decode`).
//! Chunk-size lines are parsed by `httparse`.

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most trailer bytes accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// A chunked body that is not well formed.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size line")]
    Size,
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("chunk size or trailer line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("trailers longer than {MAX_TRAILERS} bytes")]
    TrailersTooLong,
    #[error("trailer line not ended by CRLF, or with a CR inside")]
    TrailerLineEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data: the CRLF, this many of its bytes seen.
    DataEnd(u8),
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
    Done,
}

/// Follows a chunked body through the reads it arrives in.
#[derive(Debug)]
pub struct Chunked {
    state: State,
    /// The part of a size or trailer line seen so far.
    line: Vec<u8>,
    trailer_bytes: usize,
    /// The trailer lines, when they are kept (`Chunked::keeping_trailers`).
    trailers: Option<Vec<u8>>,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size,
            line: Vec::new(),
            trailer_bytes: 0,
            trailers: None,
        }
    }
}

impl Chunked {
    /// A decoder that keeps the trailer fields for [`Chunked::trailers`].
    pub fn keeping_trailers() -> Chunked {
        Chunked {
            trailers: Some(Vec::new()),
            ..Chunked::default()
        }
    }

    /// The trailer fields of a complete body, when kept and there were
    /// any; connection-specific fields (which HTTP/2 forbids) and malformed
    /// lines are left out.
    pub fn trailers(&mut self) -> Option<http::HeaderMap> {
        let mut lines = self.trailers.take().filter(|lines| !lines.is_empty())?;
        lines.extend_from_slice(b"\r\n");
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let Ok(httparse::Status::Complete((_, fields))) =
            httparse::parse_headers(&lines, &mut fields)
        else {
            return None;
        };
        let mut map = http::HeaderMap::new();
        for field in fields {
            let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(field.name.as_bytes()),
                http::HeaderValue::from_bytes(field.value),
            ) else {
                continue;
            };
            let connection_specific = matches!(
                name.as_str(),
                "connection"
                    | "keep-alive"
                    | "proxy-connection"
                    | "transfer-encoding"
                    | "upgrade"
                    | "te"
                    | "content-length"
                    | "host"
            );
            if !connection_specific {
                map.append(name, value);
            }
        }
        (!map.is_empty()).then_some(map)
    }

    /// Consumes the next bytes of the stream. Returns how many of them
    /// belong to the body (all of them unless the body ends inside
    /// `input`) and whether the body is complete.
    pub fn scan(&mut self, input: &[u8]) -> Result<(usize, bool), ChunkError> {
        self.decode(input, |_| {})
    }

    /// Like [`Chunked::scan`], and hands `data` the range of `input` each
    /// piece of chunk data is in: the decoded body, without the framing
    /// (trailers are dropped).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(std::ops::Range<usize>),
    ) -> Result<(usize, bool), ChunkError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done => return Ok((pos, true)),
                State::Data(left) => {
                    let available = (input.len() - pos) as u64;
                    let take = left.min(available);
                    data(pos..pos + take as usize);
                    pos += take as usize;
                    self.state = if take == left {
                        State::DataEnd(0)
                    } else {
                        State::Data(left - take)
                    };
                }
                State::DataEnd(seen) => {
                    let expected = if seen == 0 { b'\r' } else { b'\n' };
                    if input[pos] != expected {
                        return Err(ChunkError::MissingCrlf);
                    }
                    pos += 1;
                    self.state = if seen == 0 {
                        State::DataEnd(1)
                    } else {
                        State::Size
                    };
                }
                State::Size | State::Trailers => {
                    let rest = &input[pos..];
                    let (piece, complete) = match rest.iter().position(|&b| b == b'\n') {
                        Some(end) => (&rest[..=end], true),
                        None => (rest, false),
                    };
                    pos += piece.len();
                    if self.line.len() + piece.len() > MAX_LINE {
                        return Err(ChunkError::LineTooLong);
                    }
                    self.line.extend_from_slice(piece);
                    if complete {
                        self.end_line()?;
                    }
                }
            }
        }
        Ok((pos, self.state == State::Done))
    }

    /// A complete line is in `self.line`.
    fn end_line(&mut self) -> Result<(), ChunkError> {
        match self.state {
            State::Size => {
                let size = match httparse::parse_chunk_size(&self.line) {
                    Ok(httparse::Status::Complete((_, size))) => size,
                    _ => return Err(ChunkError::Size),
                };
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                };
            }
            State::Trailers => {
                // Relayed as they are: a line a client ends elsewhere
                // (hyper, for one, ends a line only at CRLF) would leave
                // it waiting for the end of a body wharf thinks is over.
                let Some(text) = self.line.strip_suffix(b"\r\n") else {
                    return Err(ChunkError::TrailerLineEnd);
                };
                if text.contains(&b'\r') {
                    return Err(ChunkError::TrailerLineEnd);
                }
                if text.is_empty() {
                    self.state = State::Done;
                } else {
                    self.trailer_bytes += self.line.len();
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(ChunkError::TrailersTooLong);
                    }
                    if let Some(trailers) = self.trailers.as_mut() {
                        trailers.extend_from_slice(&self.line);
                    }
                }
            }
            _ => {}
        }
        self.line.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(body: &[u8], piece: usize) -> (usize, bool) {
        let mut chunked = Chunked::default();
        let mut total = 0;
        for part in body.chunks(piece) {
            let (used, done) = chunked.scan(part).expect("well formed");
            total += used;
            if done {
                return (total, true);
            }
        }
        (total, false)
    }

    #[test]
    fn finds_the_end_whatever_the_read_boundaries() {
        let body =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 9\r\n\r\nNEXT";
        let end = body.len() - 4;
        for piece in 1..body.len() {
            assert_eq!(
                scan_in_pieces(body, piece),
                (end, true),
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn decodes_the_data_whatever_the_read_boundaries() {
        let body =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 9\r\n\r\nNEXT";
        for piece in 1..body.len() {
            let mut chunked = Chunked::default();
            let mut decoded = Vec::new();
            let mut done = false;
            for part in body.chunks(piece) {
                let (_, end) = chunked
                    .decode(part, |range| decoded.extend_from_slice(&part[range]))
                    .expect("well formed");
                if end {
                    done = true;
                    break;
                }
            }
            assert!(done, "piece size {piece}");
            assert_eq!(
                decoded, b"helloabcdefghijklmnopqrstuvwxyz",
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn trailers_are_kept_when_asked_without_connection_fields() {
        let body =
            b"3\r\nabc\r\n0\r\nX-Sum: 9\r\nConnection: close\r\nx-two: a\r\nx-two: b\r\n\r\n";
        for piece in 1..body.len() {
            let mut chunked = Chunked::keeping_trailers();
            for part in body.chunks(piece) {
                chunked.scan(part).expect("well formed");
            }
            let trailers = chunked.trailers().expect("trailers");
            assert_eq!(trailers.get("x-sum").map(|v| v.as_bytes()), Some(&b"9"[..]));
            assert_eq!(trailers.get_all("x-two").iter().count(), 2);
            assert!(!trailers.contains_key("connection"), "piece size {piece}");
        }
        let mut plain = Chunked::default();
        plain.scan(body).expect("well formed");
        assert!(plain.trailers().is_none(), "kept without being asked");
        let mut none = Chunked::keeping_trailers();
        none.scan(b"0\r\n\r\n").expect("well formed");
        assert!(none.trailers().is_none());
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(scan_in_pieces(b"5\r\nhel", 3), (6, false));
        assert_eq!(scan_in_pieces(b"0\r\n", 3), (3, false));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(Chunked::default().scan(b"zz\r\n").is_err());
        assert!(Chunked::default().scan(b"2\r\nabXY").is_err());
        // Lines a client would end elsewhere than wharf.
        for body in [
            &b"0\r\nX-Sum: 42\n\r\n"[..],
            b"0\r\n\n",
            b"0\r\nX-Sum: 4\r2\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(Chunked::default().scan(body).is_err(), "{body:?}");
        }
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(Chunked::default().scan(&long).is_err());
    }
}
