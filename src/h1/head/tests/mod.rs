//! Head tests by concept: request heads (`request.rs`), response heads
//! rewritten for the client (`response.rs`) and mapped for the general path
//! (`mapped.rs`); the shared byte checks are here.

use super::response::Name;
use super::{parse_length, token_is};

mod mapped;
mod request;
mod response;

#[test]
fn content_lengths_are_read_as_digits_only() {
    assert_eq!(parse_length(b"0"), Some(0));
    assert_eq!(parse_length(b"13"), Some(13));
    assert_eq!(
        parse_length(b"999999999999999999"),
        Some(999_999_999_999_999_999)
    );
    for bad in [
        &b""[..],
        b"1 ",
        b"+1",
        b"-1",
        b"1.0",
        b"0x10",
        b"1234567890123456789",
    ] {
        assert_eq!(parse_length(bad), None, "{bad:?}");
    }
}

#[test]
fn header_names_are_matched_ignoring_case_only() {
    assert!(token_is(b"Content-Length", b"content-length"));
    assert!(token_is(b"CONTENT-LENGTH", b"content-length"));
    assert!(!token_is(b"content-lengthx", b"content-length"));
    assert!(!token_is(b"content_length", b"content-length"));
    assert!(!token_is(b"content-lengti", b"content-length"));
    // Every token byte but the letters' two cases differs.
    for byte in (0x21..0x7fu8).filter(|byte| !byte.is_ascii_alphabetic() && *byte != b'-') {
        let name = [b't', byte];
        assert!(!token_is(&name, b"te"), "{byte:#x}");
    }
    assert_eq!(Name::of(b"Date"), Name::Date);
    assert_eq!(Name::of(b"TE"), Name::HopByHop);
    assert_eq!(Name::of(b"Te-"), Name::Other);
}
