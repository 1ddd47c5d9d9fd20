//! Compression on the fast path: compressible answers compressed for
//! clients that ask (with `Vary`), chunked and until-close bodies too,
//! and what must not be compressed relayed as it is.

use super::*;

/// A cache in front of wharf keeps the compressed and the plain copy of a
/// compressible answer apart: both carry `Vary: Accept-Encoding`. A tiny
/// answer is never compressed and varies on nothing. All of it on one
/// client connection and one upstream connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressible_answers_are_compressed_for_clients_that_ask_and_vary() {
    let page = "<p>a page long enough to be worth compressing</p>".repeat(20);
    let expected = page.clone();
    let (backend, accepted) = scripted(
        move |path| {
            let body = if path == "/tiny" { "ok" } else { page.as_str() };
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"v1\"\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        },
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    conn.send(&get("/page")).await;
    let plain = conn.response("GET").await;
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("etag"), Some("\"v1\""));
    assert_eq!(plain.body, expected.as_bytes());
    for _ in 0..2 {
        conn.send(
            b"GET /page HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
        )
        .await;
        let gzipped = conn.response("GET").await;
        assert_eq!(gzipped.status, 200);
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
        assert_eq!(gzipped.header("vary"), Some("accept-encoding"));
        // Small and of known length: compressed whole and sent with its length.
        let length = gzipped.header("content-length").map(str::to_string);
        assert_eq!(length, Some(gzipped.body.len().to_string()));
        // Other bytes than the upstream's: the ETag is weak now.
        assert_eq!(gzipped.header("etag"), Some("W/\"v1\""));
        assert!(gzipped.header("x-request-id").is_some());
        assert!(
            gzipped.body.len() < expected.len() / 4,
            "{} bytes",
            gzipped.body.len()
        );
        assert_eq!(gunzip(&gzipped.body), expected.as_bytes());
    }
    // What browsers send: zstd, the layer's first choice among equals.
    conn.send(
        b"GET /page HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n",
    )
    .await;
    let zstd = conn.response("GET").await;
    assert_eq!(zstd.header("content-encoding"), Some("zstd"));
    let decoded = zstd::stream::decode_all(&zstd.body[..]).expect("valid zstd");
    assert_eq!(decoded, expected.as_bytes());
    conn.send(
        b"GET /page HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: br;q=1, gzip;q=0.5\r\n\r\n",
    )
    .await;
    let br = conn.response("GET").await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(unbrotli(&br.body), expected.as_bytes());
    conn.send(b"GET /tiny HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let tiny = conn.response("GET").await;
    assert_eq!(tiny.body, b"ok");
    assert_eq!(tiny.header("vary"), None);
    assert_eq!(tiny.header("content-encoding"), None);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection for all"
    );
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("valid brotli");
    out
}

/// A chunked upstream body (trailers and all), one that runs until the
/// upstream closes and one too long to compress whole are decoded,
/// compressed with the client's preferred encoding as they stream, and
/// sent chunked on a client connection that stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_and_until_close_bodies_are_compressed_too() {
    let line = "{\"id\": 1, \"name\": \"a record in a long JSON list\"},\n";
    let chunk = line.repeat(40);
    let chunked_answer = {
        let mut text = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        for _ in 0..3 {
            text.push_str(&format!("{:x};ext=1\r\n{chunk}\r\n", chunk.len()));
        }
        text.push_str("0\r\nx-sum: 1\r\n\r\n");
        text
    };
    let (chunked, chunked_accepted) =
        scripted(move |_| chunked_answer.clone().into_bytes(), Close::Never).await;
    let until_close = chunk.clone();
    let (closing, _) = scripted(
        move |_| {
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{until_close}").into_bytes()
        },
        Close::AtOnce,
    )
    .await;
    let big_body = line.repeat(7000);
    let big_expected = big_body.clone();
    let (big, big_accepted) = scripted(
        move |_| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big_body}",
                big_body.len()
            )
            .into_bytes()
        },
        Close::Never,
    )
    .await;
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/chunked\"\n  upstream = \"chunked\"\n\
         [[site.route]]\n  path = \"/close\"\n  upstream = \"closing\"\n\
         [[site.route]]\n  path = \"/big\"\n  upstream = \"big\"\n\n\
         [upstream.chunked]\nservers = [\"{chunked}\"]\n\
         [upstream.closing]\nservers = [\"{closing}\"]\n\
         [upstream.big]\nservers = [\"{big}\"]\n"
    );
    let wharf = Wharf::start("", &body);
    let mut conn = Conn::open(wharf.addr).await;
    for _ in 0..2 {
        conn.send(
            b"GET /chunked HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip;q=0.5, br\r\n\r\n",
        )
        .await;
        let answer = conn.response("GET").await;
        assert_eq!(answer.header("content-encoding"), Some("br"));
        assert_eq!(unbrotli(&answer.body), chunk.repeat(3).as_bytes());
    }
    assert_eq!(
        chunked_accepted.load(Ordering::SeqCst),
        1,
        "the upstream connection is reused"
    );
    conn.send(b"GET /close HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let answer = conn.response("GET").await;
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
    assert_eq!(gunzip(&answer.body), chunk.as_bytes());
    // Over 256 KiB: streamed through the layer, not read whole.
    assert!(big_expected.len() > 256 * 1024);
    for _ in 0..2 {
        conn.send(b"GET /big HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: zstd\r\n\r\n")
            .await;
        let answer = conn.response("GET").await;
        assert_eq!(answer.header("content-encoding"), Some("zstd"));
        assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
        let decoded = zstd::stream::decode_all(&answer.body[..]).expect("valid zstd");
        assert_eq!(decoded, big_expected.as_bytes());
    }
    assert_eq!(
        big_accepted.load(Ordering::SeqCst),
        1,
        "the upstream connection is reused"
    );
    // The client connection goes on.
    conn.send(b"GET /chunked HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await;
    let answer = conn.response("GET").await;
    assert_eq!(answer.header("content-encoding"), None);
    assert_eq!(answer.body, chunk.repeat(3).as_bytes());
}

/// What must not be compressed is relayed as it is: an answer the upstream
/// already encoded, an image, a HEAD answer; and a client that refuses
/// every encoding gets the plain bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_must_not_be_compressed_are_relayed_as_they_are() {
    let text = "text that would compress well ".repeat(30);
    let expected = text.clone();
    let (backend, _) = scripted(
        move |path| {
            let (kind, encoding) = match path {
                "/encoded" => ("text/plain", "Content-Encoding: identity-ish\r\n"),
                "/image" => ("image/png", ""),
                _ => ("text/plain", ""),
            };
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n{encoding}Content-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .into_bytes()
        },
        Close::Never,
    )
    .await;
    let wharf = Wharf::start("", &proxy_to(backend));
    let mut conn = Conn::open(wharf.addr).await;
    for path in ["/encoded", "/image"] {
        conn.send(
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n").as_bytes(),
        )
        .await;
        let answer = conn.response("GET").await;
        assert_eq!(answer.body, expected.as_bytes(), "{path}");
        assert_ne!(answer.header("content-encoding"), Some("gzip"), "{path}");
    }
    conn.send(b"HEAD /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
        .await;
    let head = conn.response("HEAD").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("vary"), Some("accept-encoding"));
    conn.send(b"GET /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip;q=0, br;q=0\r\n\r\n")
        .await;
    let refused = conn.response("GET").await;
    assert_eq!(refused.header("content-encoding"), None);
    assert_eq!(refused.body, expected.as_bytes());
    // `*` names no encoding the compression layer knows: sent as it is.
    conn.send(b"GET /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: *\r\n\r\n")
        .await;
    let star = conn.response("GET").await;
    assert_eq!(star.header("content-encoding"), None);
    assert_eq!(star.header("vary"), Some("accept-encoding"));
    assert_eq!(star.body, expected.as_bytes());
}
