//! Chunked bodies (RFC 9112 7.1): hex sizes that fit, extensions after
//! `;` ended by CRLF, CRLF after each chunk's data, trailer fields that
//! never become header fields upstream, and a last chunk whose trailer
//! section must end before the request does.

use super::*;

/// A chunked request for `/first` with `body` as sent.
fn chunked(body: &str) -> String {
    format!("POST /first HTTP/1.1\r\nHost: {{host}}\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
}

#[tokio::test]
async fn well_formed_chunks_are_forwarded_rechunked() {
    let setup = Setup::start().await;
    setup
        .check(&[
            case(
                "two chunks",
                chunked("2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "uppercase hex",
                chunked("A\r\nhelloworld\r\n0\r\n\r\n"),
                forwarded(b"helloworld"),
            ),
            case(
                "leading zeros",
                chunked("0005\r\nhello\r\n0\r\n\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "an extension",
                chunked("5;name=value\r\nhello\r\n0\r\n\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "a quoted extension",
                chunked("5;name=\"a;b\"\r\nhello\r\n0;last\r\n\r\n"),
                forwarded(b"hello"),
            ),
            case("empty body", chunked("0\r\n\r\n"), forwarded(b"")),
            case(
                "whitespace before an extension",
                chunked("5 ;name=value\r\nhello\r\n0\r\n\r\n"),
                forwarded(b"hello"),
            ),
            // Not in RFC 9112's grammar, but read as hyper reads it and
            // sent on re-chunked: no two readings reach the backend.
            case(
                "whitespace after the size",
                chunked("5 \r\nhello\r\n0\r\n\r\n"),
                forwarded(b"hello"),
            ),
        ])
        .await;
}

#[tokio::test]
async fn trailer_fields_never_become_header_fields_upstream() {
    let setup = Setup::start().await;
    let clean = |seen: &Seen| {
        for name in ["content-length", "transfer-encoding", "x-trailer", "host"] {
            let values = seen.all(name);
            let expected = match name {
                "transfer-encoding" => &["chunked"][..],
                "host" => return Ok(()),
                _ => &[],
            };
            if values != expected {
                return Err(format!("forwarded {name}: {values:?}"));
            }
        }
        let smuggled = seen.trailers.iter().any(|(name, _)| {
            matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "host"
            )
        });
        match smuggled {
            true => Err(format!("forwarded trailers {:?}", seen.trailers)),
            false => Ok(()),
        }
    };
    let kept = Expect::Forwarded {
        body: b"hello",
        close: false,
        check: clean,
    };
    setup
        .check(&[
            case(
                "Content-Length in the trailer",
                chunked("5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"),
                kept,
            ),
            case(
                "Transfer-Encoding in the trailer",
                chunked("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
                kept,
            ),
            case(
                "Host and an ordinary field in the trailer",
                chunked("5\r\nhello\r\n0\r\nHost: other.test\r\nX-Trailer: yes\r\n\r\n"),
                kept,
            ),
        ])
        .await;
}

#[tokio::test]
async fn malformed_chunks_are_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case(
                "size over 64 bits",
                chunked("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
                bad,
            ),
            case(
                "size 2^64 + 5",
                chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"),
                bad,
            ),
            case("size with 0x", chunked("0x5\r\nhello\r\n0\r\n\r\n"), bad),
            case("negative size", chunked("-5\r\nhello\r\n0\r\n\r\n"), bad),
            case("empty size", chunked("\r\nhello\r\n0\r\n\r\n"), bad),
            case(
                "size ended by a bare LF",
                chunked("5\nhello\r\n0\r\n\r\n"),
                bad,
            ),
            case(
                "extension ended by a bare LF",
                chunked("5;name\nhello\r\n0\r\n\r\n"),
                bad,
            ),
            case(
                "bare CR in an extension",
                chunked("5;na\rme\r\nhello\r\n0\r\n\r\n"),
                bad,
            ),
            case(
                "data longer than its size",
                chunked("3\r\nhello\r\n0\r\n\r\n"),
                bad,
            ),
            case(
                "no CRLF after the data",
                chunked("5\r\nhello0\r\n\r\n"),
                bad,
            ),
            case(
                "bare LF after the data",
                chunked("5\r\nhello\n0\r\n\r\n"),
                bad,
            ),
            case(
                "last chunk ended by a bare LF",
                chunked("5\r\nhello\r\n0\n\r\n"),
                bad,
            ),
            case(
                "obs-fold in the trailer",
                chunked("5\r\nhello\r\n0\r\nX-Note: a\r\n b\r\n\r\n"),
                bad,
            ),
            case(
                "a trailer line without a colon",
                chunked("5\r\nhello\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n"),
                bad,
            ),
        ])
        .await;
}

#[tokio::test]
async fn a_last_chunk_without_the_final_crlf_is_not_a_whole_request() {
    let setup = Setup::start().await;
    // Alone, the body never ends: 408 once it paused for idle_timeout.
    // With the innocent request after it, that request is read as the
    // trailer section, and its request line is no field: 400.
    setup
        .check(&[case(
            "0 then nothing",
            chunked("5\r\nhello\r\n0\r\n"),
            Expect::Refused(&[400, 408]),
        )])
        .await;
}
