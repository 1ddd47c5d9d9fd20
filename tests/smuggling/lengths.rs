//! Content-Length values (RFC 9112 6.3, RFC 9110 8.6): one length, made
//! of digits, fitting in 64 bits. Anything else is refused, since no
//! length can be trusted then; the same value twice is one length. And
//! a `Connection` option naming a framing field never takes it away
//! from the body it frames.

use super::*;

/// `hello` for `/first` under the given length fields, then `!`: read
/// with a length of 6 the body takes it, with 5 it starts the next
/// request.
fn with_lengths(fields: &str) -> String {
    format!("POST /first HTTP/1.1\r\nHost: {{host}}\r\n{fields}\r\nhello")
}

#[tokio::test]
async fn a_length_made_of_digits_frames_the_body() {
    let setup = Setup::start().await;
    setup
        .check(&[
            case(
                "5",
                with_lengths("Content-Length: 5\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "leading zeros",
                with_lengths("Content-Length: 0005\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "trailing space",
                with_lengths("Content-Length: 5 \r\n"),
                forwarded(b"hello"),
            ),
            case(
                "the same value twice",
                with_lengths("Content-Length: 5\r\nContent-Length: 5\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "0 and no body",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n",
                forwarded(b""),
            ),
        ])
        .await;
}

#[tokio::test]
async fn a_length_that_is_not_one_number_is_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case(
                "two that differ",
                with_lengths("Content-Length: 5\r\nContent-Length: 6\r\n"),
                bad,
            ),
            case("a list", with_lengths("Content-Length: 5, 5\r\n"), bad),
            case(
                "a list that differs",
                with_lengths("Content-Length: 5, 6\r\n"),
                bad,
            ),
            case("plus sign", with_lengths("Content-Length: +5\r\n"), bad),
            case("negative", with_lengths("Content-Length: -1\r\n"), bad),
            case("hexadecimal", with_lengths("Content-Length: 0x5\r\n"), bad),
            case("two numbers", with_lengths("Content-Length: 5 5\r\n"), bad),
            case("empty", with_lengths("Content-Length: \r\n"), bad),
            case("a fraction", with_lengths("Content-Length: 5.0\r\n"), bad),
            case(
                "over 64 bits",
                with_lengths("Content-Length: 18446744073709551621\r\n"),
                bad,
            ),
            case(
                "far over 64 bits",
                with_lengths("Content-Length: 99999999999999999999999999999999\r\n"),
                bad,
            ),
        ])
        .await;
}

#[tokio::test]
async fn a_length_over_the_body_limit_is_refused_and_the_connection_closes() {
    let setup = Setup::start().await;
    setup
        .check(&[
            case(
                "a terabyte",
                with_lengths("Content-Length: 1000000000000\r\n"),
                Expect::Refused(&[413]),
            ),
            // hyper holds no length this close to u64::MAX, and answers
            // 431 as for a head too large to read.
            case(
                "u64::MAX",
                with_lengths("Content-Length: 18446744073709551615\r\n"),
                Expect::Refused(&[431]),
            ),
        ])
        .await;
}

/// A body that frames as a request when it is sent without its length.
const INNER: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_connection_option_never_takes_the_length_from_its_body() {
    let setup = Setup::start().await;
    let inner = Expect::Forwarded {
        body: INNER.as_bytes(),
        close: false,
        check: |seen| match seen.all("content-length").as_slice() {
            ["35"] => Ok(()),
            lengths => Err(format!("forwarded Content-Length {lengths:?}")),
        },
    };
    setup
        .check(&[
            case(
                "Connection: Content-Length",
                format!(
                    "POST /first HTTP/1.1\r\nHost: {{host}}\r\nConnection: Content-Length\r\n\
                     Content-Length: 35\r\n\r\n{INNER}"
                ),
                inner,
            ),
            case(
                "Connection: keep-alive, content-length",
                format!(
                    "POST /first HTTP/1.1\r\nHost: {{host}}\r\nContent-Length: 35\r\n\
                     Connection: keep-alive, content-length\r\n\r\n{INNER}"
                ),
                inner,
            ),
            case(
                "Connection: Host",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nConnection: Host\r\n\
                 Content-Length: 5\r\n\r\nhello",
                forwarded(b"hello"),
            ),
            case(
                "Connection: Transfer-Encoding",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nConnection: Transfer-Encoding\r\n\
                 Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                forwarded(b"hello"),
            ),
        ])
        .await;
}
