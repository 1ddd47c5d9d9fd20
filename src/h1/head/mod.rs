//! Request and response heads on the fast path: parsed by `httparse`,
//! checked for what the fast path can relay, and written back out.
//!
//! Anything unusual in a request (HTTP/1.0, `Transfer-Encoding`, `Expect`,
//! `Upgrade`, a client asking for compression, a head hyper would reject)
//! makes the request `Unusual`: the connection is then handed to hyper,
//! which serves it with the full stack and answers errors as it always did.
//!
//! By concept: the client's request head (`request.rs`), the head sent
//! upstream (`forward.rs`), the upstream's response head rewritten for the
//! client (`response.rs`) or mapped into `http` types for the general path
//! (`mapped.rs`), the head of an answer to compress (`compressed.rs`), and
//! the small writers for wharf's own answers (`write.rs`).

mod compressed;
mod forward;
mod mapped;
mod request;
mod response;
mod write;

#[cfg(test)]
mod tests;

pub use compressed::{response_parts, write_compressed_head};
pub use forward::{write_forwarded, write_request};
pub use mapped::{map_response, MapParse};
pub use request::{parse_request, Kind, Parsed, RequestHead};
pub use response::{parse_response, Extra, Framing, ResponseError, ResponseHead, ResponseParse};
pub use write::{chunk_header, write_date, write_extra, write_status};

/// Most request or response header fields read.
const MAX_HEADERS: usize = 100;

/// A Content-Length value: digits only.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !all_bytes(value, |b| b.is_ascii_digit()) {
        return None;
    }
    // At most 18 digits: below `u64::MAX`.
    Some(
        value
            .iter()
            .fold(0, |length, &digit| length * 10 + u64::from(digit - b'0')),
    )
}

/// Whether every byte of `bytes` is `ok`. Every byte is looked at, without
/// stopping at the first that is not, which lets the compiler check many
/// at once; these are short header values, nearly always all `ok`.
fn all_bytes(bytes: &[u8], ok: impl Fn(u8) -> bool) -> bool {
    bytes.iter().fold(true, |all, &byte| all & ok(byte))
}

/// Whether the header name `name` is `known` (lowercase letters and
/// `-`), ASCII case ignored. Every byte is compared, without stopping at
/// the first that differs, which lets the compiler compare many at once.
/// Setting bit 5 lowercases a letter and leaves `-` as it is; the only
/// other byte it would turn into a letter or `-` is a control byte,
/// which a header name (a token, checked by `httparse`) cannot hold.
fn token_is(name: &[u8], known: &[u8]) -> bool {
    name.len() == known.len()
        && name
            .iter()
            .zip(known)
            .fold(0, |differ, (&byte, &want)| differ | ((byte | 0x20) ^ want))
            == 0
}

/// Counts the transfer codings of one upstream `Transfer-Encoding` value
/// into `codings`, and notes in `other` any that is not `chunked`. An
/// answer is relayed only with `chunked` alone: wharf decodes no other
/// coding, and a body still coded with one would reach the client
/// unannounced once the header, hop-by-hop, is gone (nginx answers 502).
pub(crate) fn count_codings(value: &[u8], codings: &mut u32, other: &mut bool) {
    for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if coding.is_empty() {
            continue;
        }
        *codings += 1;
        if !coding.eq_ignore_ascii_case(b"chunked") {
            *other = true;
        }
    }
}
