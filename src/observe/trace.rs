//! Request ids and W3C trace context.
//!
//! Every request leaves wharf with an `X-Request-Id` and a `traceparent`
//! (W3C Trace Context, level 1): a well-formed one the client (or a proxy in
//! front) sent is kept unchanged, a missing or malformed one is replaced by
//! a new one. Both go to the upstream, into the access log, and the request
//! id back to the client, so one id finds a request everywhere.
//!
//! wharf records no spans of its own, so it forwards an incoming
//! `traceparent` as it is (and its `tracestate`): a new parent-id would point
//! at a span no tracing backend has. When it starts a new trace, an incoming
//! `tracestate` is dropped with the invalid `traceparent` it belonged to. A generated `traceparent` starts a new trace with the
//! sampled flag set, so apps using a parent-based sampler record it.

use http::header::{HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Longest client-supplied request id kept; longer ones are replaced.
const MAX_REQUEST_ID: usize = 200;

/// The ids of one request, as sent upstream.
#[derive(Debug, Clone)]
pub struct Ids {
    pub request_id: HeaderValue,
    pub traceparent: HeaderValue,
}

impl Ids {
    /// The 32-hex-digit trace id inside `traceparent`.
    pub fn trace_id(&self) -> &str {
        self.traceparent
            .to_str()
            .ok()
            .and_then(|t| t.get(3..35))
            .unwrap_or("")
    }

    /// The 16-hex-digit parent (span) id inside `traceparent`.
    pub fn span_id(&self) -> &str {
        self.traceparent
            .to_str()
            .ok()
            .and_then(|t| t.get(36..52))
            .unwrap_or("")
    }
}

/// Keeps valid ids found in `headers`, replaces missing or invalid ones,
/// and writes the result back so it is forwarded.
pub fn take_or_create(headers: &mut HeaderMap) -> Ids {
    let chosen = read(headers);
    apply(&chosen, headers);
    chosen.ids
}

/// The ids `headers` lead to ([`choose`]), without changing `headers`;
/// [`apply`] (or a writer skipping what [`Chosen::replaces`] names) puts
/// them on the request that goes upstream.
pub fn read(headers: &HeaderMap) -> Chosen {
    let mut parents = headers.get_all(&TRACEPARENT).iter();
    let (first_parent, more_parents) = (parents.next(), parents.next().is_some());
    choose(
        headers.get(&X_REQUEST_ID),
        first_parent.filter(|_| !more_parents),
    )
}

/// Writes the ids `chosen` replaced into `headers`.
pub fn apply(chosen: &Chosen, headers: &mut HeaderMap) {
    if !chosen.kept_request_id {
        headers.insert(X_REQUEST_ID.clone(), chosen.ids.request_id.clone());
    }
    if !chosen.kept_traceparent {
        headers.insert(TRACEPARENT.clone(), chosen.ids.traceparent.clone());
        // Vendor state belongs to the trace it came with (W3C 3.3.1).
        headers.remove(&TRACESTATE);
    }
}

/// The ids of a request and which of them came with it.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub ids: Ids,
    /// The first incoming `X-Request-Id` was valid and is the request's id.
    pub kept_request_id: bool,
    /// The incoming `traceparent` was valid and is kept, with its
    /// `tracestate`; otherwise both are replaced (`tracestate` dropped).
    pub kept_traceparent: bool,
}

impl Chosen {
    /// Whether an incoming header named `name` is replaced (or, for
    /// `tracestate`, dropped) rather than forwarded as it came.
    pub fn replaces(&self, name: &HeaderName) -> bool {
        (!self.kept_request_id && *name == X_REQUEST_ID)
            || (!self.kept_traceparent && (*name == TRACEPARENT || *name == TRACESTATE))
    }
}

/// Decides the ids from the first incoming `X-Request-Id` and the only
/// incoming `traceparent` (`None` when there were none or several: more
/// than one is invalid, W3C 3.2).
pub fn choose(request_id: Option<&HeaderValue>, traceparent: Option<&HeaderValue>) -> Chosen {
    let kept_request_id = request_id.filter(|value| valid_request_id(value.as_bytes()));
    let kept_traceparent = traceparent.filter(|value| valid_traceparent(value.as_bytes()));
    let (request_id, traceparent) = match (kept_request_id, kept_traceparent) {
        (None, None) => new_pair(),
        (request_id, traceparent) => (
            request_id.cloned().unwrap_or_else(new_request_id),
            traceparent.cloned().unwrap_or_else(new_traceparent),
        ),
    };
    Chosen {
        ids: Ids {
            request_id,
            traceparent,
        },
        kept_request_id: kept_request_id.is_some(),
        kept_traceparent: kept_traceparent.is_some(),
    }
}

/// Visible ASCII, 1..=200 bytes: safe to log and to echo back.
fn valid_request_id(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// `version-traceid-parentid-flags`, lowercase hex, version not "ff",
/// trace id and parent id not all zeros. Future versions may append
/// fields after the flags (W3C 3.2.4), which are kept as they are.
pub fn valid_traceparent(value: &[u8]) -> bool {
    if value.len() < 55 || (value.len() > 55 && value[55] != b'-') {
        return false;
    }
    let hex = |range: std::ops::Range<usize>| {
        value[range]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let zeros = |range: std::ops::Range<usize>| value[range].iter().all(|b| *b == b'0');
    let version_ok = hex(0..2) && &value[0..2] != b"ff";
    // Version 00 is exactly 55 bytes.
    let length_ok = &value[0..2] != b"00" || value.len() == 55;
    version_ok
        && length_ok
        && value[2] == b'-'
        && value[35] == b'-'
        && value[52] == b'-'
        && hex(3..35)
        && hex(36..52)
        && hex(53..55)
        && !zeros(3..35)
        && !zeros(36..52)
}

/// `value` as 32 lowercase hex digits.
fn hex32(value: u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&hex16((value >> 64) as u64));
    out[16..].copy_from_slice(&hex16(value as u64));
    out
}

/// `value` as 16 lowercase hex digits, computed on all of them at once
/// (about a third of the instructions of a digit-by-digit table lookup,
/// for the two ids every request gets).
fn hex16(value: u64) -> [u8; 16] {
    const LOW_NIBBLES: u128 = 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    // Nibble k of `value` into byte k, by halving the distance each step.
    let mut x = u128::from(value);
    x = (x | (x << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & LOW_NIBBLES;
    // 1 in the bytes holding 10..=15; no byte carries into the next.
    let letters = ((x + ONES * 6) >> 4) & ONES;
    let ascii = x + ONES * u128::from(b'0') + letters * u128::from(b'a' - b'0' - 10);
    // Byte 15 holds the highest nibble: big-endian order writes it first.
    ascii.to_be_bytes()
}

fn nonzero_random() -> u128 {
    loop {
        let value = fastrand::u128(..);
        if value != 0 {
            return value;
        }
    }
}

/// 32 random hex digits (128 bits, like a UUID without dashes).
pub fn new_request_id() -> HeaderValue {
    to_header(&hex32(fastrand::u128(..)))
}

/// A new sampled trace: `00-<trace id>-<span id>-01`.
pub fn new_traceparent() -> HeaderValue {
    to_header(&traceparent_digits())
}

/// A new request id and a new trace, for a request that came with
/// neither (most do): one buffer shared by both values, so they take one
/// allocation, and the clones a request makes of them none.
fn new_pair() -> (HeaderValue, HeaderValue) {
    let mut both = [0u8; 32 + 55];
    both[..32].copy_from_slice(&hex32(fastrand::u128(..)));
    both[32..].copy_from_slice(&traceparent_digits());
    let shared = bytes::Bytes::copy_from_slice(&both);
    (
        shared_header(shared.slice(..32)),
        shared_header(shared.slice(32..)),
    )
}

/// `traceparent`'s bytes for a new sampled trace.
fn traceparent_digits() -> [u8; 55] {
    let mut out = *b"00-################################-################-01";
    out[3..35].copy_from_slice(&hex32(nonzero_random()));
    let span = loop {
        let value = fastrand::u64(..);
        if value != 0 {
            break value;
        }
    };
    out[36..52].copy_from_slice(&hex32(u128::from(span))[16..]);
    out
}

/// A header value from hex digits and dashes, which need no check.
fn to_header(ascii: &[u8]) -> HeaderValue {
    shared_header(bytes::Bytes::copy_from_slice(ascii))
}

/// `to_header` for bytes already in a `Bytes`.
fn shared_header(ascii: bytes::Bytes) -> HeaderValue {
    debug_assert!(ascii.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-'));
    // SAFETY: the only requirement is valid UTF-8; every caller passes
    // ASCII hex digits and dashes (checked in debug builds, here and by
    // `from_maybe_shared_unchecked` itself).
    unsafe { HeaderValue::from_maybe_shared_unchecked(ascii) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_lowercase_hex() {
        let value = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        assert_eq!(&hex32(value), b"0123456789abcdeffedcba9876543210");
        assert_eq!(&hex32(0xa), b"0000000000000000000000000000000a");
        assert_eq!(&hex32(u128::MAX), b"ffffffffffffffffffffffffffffffff");
        assert_eq!(&hex16(0x9a0f_f09a_a9f0_0fa9), b"9a0ff09aa9f00fa9");
        for _ in 0..1000 {
            let value = fastrand::u128(..);
            assert_eq!(&hex32(value)[..], format!("{value:032x}").as_bytes());
            let parent = new_traceparent();
            assert!(valid_traceparent(parent.as_bytes()), "{parent:?}");
        }
        let parent = new_traceparent();
        assert!(valid_traceparent(parent.as_bytes()), "{parent:?}");
        let id = new_request_id();
        assert_eq!(id.len(), 32);
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn a_valid_traceparent_and_request_id_are_kept() {
        let mut headers = HeaderMap::new();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert(&TRACEPARENT, HeaderValue::from_static(parent));
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        headers.insert(&TRACESTATE, HeaderValue::from_static("vendor=opaque"));
        let ids = take_or_create(&mut headers);
        assert_eq!(headers[&TRACESTATE], "vendor=opaque");
        assert_eq!(ids.traceparent, parent);
        assert_eq!(ids.request_id, "abc-123");
        assert_eq!(ids.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.span_id(), "00f067aa0ba902b7");
        assert_eq!(headers[&TRACEPARENT], parent);
    }

    #[test]
    fn missing_or_malformed_ids_are_replaced() {
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(!valid_traceparent(bad.as_bytes()), "{bad}");
        }
        assert!(valid_traceparent(
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
        ));
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("has space"));
        headers.insert(&TRACESTATE, HeaderValue::from_static("vendor=opaque"));
        let ids = take_or_create(&mut headers);
        assert!(!headers.contains_key(&TRACESTATE));
        assert_eq!(ids.request_id.len(), 32);
        assert_ne!(ids.request_id, "has space");
        assert!(valid_traceparent(ids.traceparent.as_bytes()));
        assert!(ids.traceparent.to_str().expect("ascii").ends_with("-01"));
        assert_eq!(headers[&X_REQUEST_ID], ids.request_id);
        assert_eq!(headers[&TRACEPARENT], ids.traceparent);
    }

    #[test]
    fn ids_made_together_are_each_whole_and_new_for_every_request() {
        let first = choose(None, None).ids;
        let second = choose(None, None).ids;
        for ids in [&first, &second] {
            assert_eq!(ids.request_id.len(), 32, "{ids:?}");
            assert!(
                ids.request_id.as_bytes().iter().all(u8::is_ascii_hexdigit),
                "{ids:?}"
            );
            assert!(valid_traceparent(ids.traceparent.as_bytes()), "{ids:?}");
            // The request id is not a piece of the trace id beside it.
            assert_ne!(ids.request_id.as_bytes(), ids.trace_id().as_bytes());
        }
        assert_ne!(first.request_id, second.request_id);
        assert_ne!(first.traceparent, second.traceparent);
        // A clone is the same value, and outlives the original.
        let kept = first.request_id.clone();
        drop(first);
        assert_eq!(kept.len(), 32);
        assert!(kept.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn two_traceparents_start_a_new_trace() {
        let mut headers = HeaderMap::new();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.append(&TRACEPARENT, HeaderValue::from_static(parent));
        headers.append(&TRACEPARENT, HeaderValue::from_static(parent));
        let ids = take_or_create(&mut headers);
        assert_ne!(ids.traceparent, parent);
        assert_eq!(headers.get_all(&TRACEPARENT).iter().count(), 1);
    }
}
