//! Header field syntax (RFC 9112 2.2, 5, 5.2; RFC 9110 5.1, 5.5): a field
//! name is a token right before its colon; obs-fold, bare CR, NUL and
//! other control bytes are refused; bare LF line ends are read as CRLF
//! and the head goes upstream with CRLF.

use super::*;

/// `hello` for `/first` with a length, then `extra` fields.
fn with_fields(extra: &str) -> String {
    format!("POST /first HTTP/1.1\r\nHost: {{host}}\r\nContent-Length: 5\r\n{extra}\r\nhello")
}

#[tokio::test]
async fn a_field_name_with_whitespace_or_a_non_token_byte_is_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case(
                "space before the colon",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length : 5\r\n\r\nhello",
                bad,
            ),
            case(
                "tab before the colon",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length\t: 5\r\n\r\nhello",
                bad,
            ),
            case(
                "space before the colon of Transfer-Encoding",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\n\
                 Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                bad,
            ),
            case(
                "leading space in a name",
                with_fields(" X-Note: a\r\n"),
                bad,
            ),
            case("space inside a name", with_fields("X Note: a\r\n"), bad),
            case("parenthesis in a name", with_fields("X(Note): a\r\n"), bad),
            case("at sign in a name", with_fields("X@Note: a\r\n"), bad),
            case("quote in a name", with_fields("\"X\": a\r\n"), bad),
            case("slash in a name", with_fields("X/Note: a\r\n"), bad),
            case("NUL in a name", with_fields("X-\0Note: a\r\n"), bad),
            case("empty name", with_fields(": a\r\n"), bad),
            case("no colon", with_fields("X-Note a\r\n"), bad),
        ])
        .await;
}

#[tokio::test]
async fn obs_fold_bare_cr_and_control_bytes_are_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case("obs-fold", with_fields("X-Note: a\r\n b\r\n"), bad),
            case(
                "obs-fold with a tab",
                with_fields("X-Note: a\r\n\tb\r\n"),
                bad,
            ),
            case(
                "obs-fold of Transfer-Encoding",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\n\
                 Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                bad,
            ),
            case("bare CR in a value", with_fields("X-Note: a\rb\r\n"), bad),
            case(
                "bare CR before a field",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nX-Note: a\rTransfer-Encoding: chunked\r\n\
                 Content-Length: 5\r\n\r\nhello",
                bad,
            ),
            case("NUL in a value", with_fields("X-Note: a\0b\r\n"), bad),
            case("SOH in a value", with_fields("X-Note: a\x01b\r\n"), bad),
            case(
                "vertical tab in a value",
                with_fields("X-Note: a\x0bb\r\n"),
                bad,
            ),
            case(
                "form feed in a value",
                with_fields("X-Note: a\x0cb\r\n"),
                bad,
            ),
            case("escape in a value", with_fields("X-Note: a\x1bb\r\n"), bad),
            case("DEL in a value", with_fields("X-Note: a\x7fb\r\n"), bad),
        ])
        .await;
}

#[tokio::test]
async fn bare_lf_line_ends_are_read_as_crlf_and_sent_on_as_crlf() {
    let setup = Setup::start().await;
    setup
        .check(&[
            case(
                "every line",
                "POST /first HTTP/1.1\nHost: {host}\nContent-Length: 5\n\nhello",
                forwarded(b"hello"),
            ),
            case(
                "one field",
                "POST /first HTTP/1.1\r\nHost: {host}\nContent-Length: 5\r\n\r\nhello",
                forwarded(b"hello"),
            ),
            case(
                "the end of the head",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\nhello",
                forwarded(b"hello"),
            ),
            case(
                "before Transfer-Encoding with a length",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\n\
                 Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                Expect::Forwarded {
                    body: b"hello",
                    close: true,
                    check: |seen| lacks(seen, "content-length"),
                },
            ),
        ])
        .await;
}
