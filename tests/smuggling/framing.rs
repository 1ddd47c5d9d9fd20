//! Transfer-Encoding, alone and with Content-Length (RFC 9112 6.1, 6.3):
//! chunked wins over a length and the connection then closes; chunked
//! not last is refused (400), another coding wharf does not implement
//! too (501); so is any Transfer-Encoding in HTTP/1.0.

use super::*;

/// A chunked `hello` for `/first`, the given fields before the body, and
/// after it bytes that frame as a request to `/smuggled` if the body is
/// read by any other length.
fn chunked_with(fields: &str) -> String {
    format!(
        "POST /first HTTP/1.1\r\nHost: {{host}}\r\n{fields}\r\n\
         5\r\nhello\r\n0\r\n\r\n"
    )
}

/// Chunked framing read as a length of 4 leaves `ello...`; read as
/// chunked it is `hello`. Only framing by chunks gives a clean request.
const CL_FIRST: &str = "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n";
const TE_FIRST: &str = "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n";

fn without_length(seen: &Seen) -> Result<(), String> {
    lacks(seen, "content-length")
}

#[tokio::test]
async fn chunked_wins_over_a_length_and_the_connection_then_closes() {
    let setup = Setup::start().await;
    let rechunked = Expect::Forwarded {
        body: b"hello",
        close: true,
        check: without_length,
    };
    setup
        .check(&[
            case(
                "Content-Length then Transfer-Encoding",
                chunked_with(CL_FIRST),
                rechunked,
            ),
            case(
                "Transfer-Encoding then Content-Length",
                chunked_with(TE_FIRST),
                rechunked,
            ),
            case(
                "Content-Length that would smuggle, then chunked",
                "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 58\r\n\
                 Transfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n",
                rechunked,
            ),
        ])
        .await;
}

#[tokio::test]
async fn chunked_in_any_spelling_a_recipient_must_accept_is_chunked() {
    let setup = Setup::start().await;
    setup
        .check(&[
            case(
                "chunked",
                chunked_with("Transfer-Encoding: chunked\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "Chunked",
                chunked_with("Transfer-Encoding: Chunked\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "CHUNKED",
                chunked_with("Transfer-Encoding: CHUNKED\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "leading whitespace",
                chunked_with("Transfer-Encoding:    chunked\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "trailing tab",
                chunked_with("Transfer-Encoding: chunked\t\r\n"),
                forwarded(b"hello"),
            ),
            case(
                "lowercase field name",
                chunked_with("transfer-encoding: chunked\r\n"),
                forwarded(b"hello"),
            ),
        ])
        .await;
}

#[tokio::test]
async fn a_transfer_coding_list_without_chunked_last_once_is_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case(
                "chunked twice on two lines",
                chunked_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
                bad,
            ),
            case(
                "chunked twice in one list",
                chunked_with("Transfer-Encoding: chunked, chunked\r\n"),
                bad,
            ),
            case(
                "chunked, identity",
                chunked_with("Transfer-Encoding: chunked, identity\r\n"),
                bad,
            ),
            case(
                "chunked, then identity on a second line",
                chunked_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"),
                bad,
            ),
            case(
                "chunked, gzip",
                chunked_with("Transfer-Encoding: chunked, gzip\r\n"),
                bad,
            ),
            case(
                "identity",
                chunked_with("Transfer-Encoding: identity\r\n"),
                bad,
            ),
            case(
                "xchunked",
                chunked_with("Transfer-Encoding: xchunked\r\n"),
                bad,
            ),
            case(
                "chunkedx",
                chunked_with("Transfer-Encoding: chunkedx\r\n"),
                bad,
            ),
            case(
                "chunked with a parameter",
                chunked_with("Transfer-Encoding: chunked;q=1\r\n"),
                bad,
            ),
            case("empty", chunked_with("Transfer-Encoding: \r\n"), bad),
            case(
                "xchunked with a length",
                chunked_with("Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n"),
                bad,
            ),
        ])
        .await;
}

#[tokio::test]
async fn a_transfer_coding_wharf_does_not_implement_is_501() {
    let setup = Setup::start().await;
    let unknown = Expect::Refused(&[501]);
    setup
        .check(&[
            case(
                "gzip, chunked",
                chunked_with("Transfer-Encoding: gzip, chunked\r\n"),
                unknown,
            ),
            case(
                "gzip on its own line, then chunked",
                chunked_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                unknown,
            ),
            case(
                "deflate, chunked",
                chunked_with("Transfer-Encoding: deflate, chunked\r\n"),
                unknown,
            ),
        ])
        .await;
}

#[tokio::test]
async fn transfer_encoding_in_http_1_0_is_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case(
                "HTTP/1.0 chunked",
                "POST /first HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\n",
                bad,
            ),
            case(
                "HTTP/1.0 chunked with a length",
                "POST /first HTTP/1.0\r\nHost: {host}\r\nContent-Length: 5\r\n\
                 Transfer-Encoding: chunked\r\n\r\nhello",
                bad,
            ),
        ])
        .await;
}
