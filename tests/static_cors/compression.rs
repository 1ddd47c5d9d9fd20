//! Response compression: the encoding the client asks for, nothing when
//! it asks for none, and never for images, ranges or with the identity
//! answer's strong ETag.

use super::*;

/// Runs `tool -dc` (gzip, zstd) on `data`; `None` if the tool is missing.
fn decompress(tool: &str, data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output().expect("tool output");
    writer.join().expect("writer").expect("write to tool");
    assert!(output.status.success(), "{tool} -dc failed");
    Some(output.stdout)
}

/// Repetitive text of a few KB behind a `respond` route at `/text`, plus a
/// PNG-typed response at `/image`.
fn compressible_site() -> (String, String) {
    let text: String = (0..200)
        .map(|i| format!("line {i}: the quick brown fox\n"))
        .collect();
    let site = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/text\"\n  respond = \"\"\"{text}\"\"\"\n\
         [[site.route]]\n  path = \"/image\"\n  respond = \"{}\"\n  content_type = \"image/png\"\n",
        "x".repeat(4096)
    );
    (site, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressible_response_is_compressed_in_the_encoding_asked_for() {
    let (site, text) = compressible_site();
    let wharf = Wharf::start("", &site);
    let url = wharf.url("/text");

    let reply = get(&url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let vary = all_values(&reply, "vary");
    assert!(
        list_contains(Some(&vary), "accept-encoding"),
        "Vary: {vary}"
    );
    assert_eq!(&reply.body[..2], b"\x1f\x8b", "gzip magic");
    // A few KB of known length: compressed whole, sent with its length.
    let length = reply.header("content-length").map(str::to_string);
    assert_eq!(length, Some(reply.body.len().to_string()));
    assert!(
        reply.body.len() < text.len() / 2,
        "gzip shrank {} bytes",
        text.len()
    );
    if let Some(plain) = decompress("gzip", &reply.body) {
        assert_eq!(plain, text.as_bytes());
    }

    let reply = get(&url, &[("accept-encoding", "zstd")]).await;
    assert_eq!(reply.header("content-encoding"), Some("zstd"));
    assert_eq!(&reply.body[..4], b"\x28\xb5\x2f\xfd", "zstd magic");
    if let Some(plain) = decompress("zstd", &reply.body) {
        assert_eq!(plain, text.as_bytes());
    }

    let reply = get(&url, &[("accept-encoding", "br")]).await;
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert!(reply.body.len() < text.len() / 2, "brotli shrank the body");
    assert_ne!(&reply.body[..], text.as_bytes());

    // Proxied and static responses go through the same layer.
    let dir = static_tree();
    let backend = echo().await;
    let body = format!(
        "{STATIC_SITE}  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{backend}\"]\n"
    );
    let wharf = Wharf::start_in(dir, "", &body);
    let reply = get(
        &wharf.url("/proxied?bytes=8192"),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(&reply.body[..2], b"\x1f\x8b");
    if let Some(plain) = decompress("gzip", &reply.body) {
        assert_eq!(plain.len(), 8192);
    }
    let reply = get(
        &wharf.url("/static/style.css"),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    if let Some(plain) = decompress("gzip", &reply.body) {
        assert_eq!(plain, css().as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_is_not_compressed_without_accept_encoding() {
    let (site, text) = compressible_site();
    let wharf = Wharf::start("", &site);
    let reply = get(&wharf.url("/text"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), text);

    let reply = get(&wharf.url("/text"), &[("accept-encoding", "identity")]).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), text);
}

/// Answers the routes do not compress whole still meet the compression
/// layer: a compressible one gets `Vary: Accept-Encoding` even when the
/// client asked for nothing, and one too long to compress in one call
/// (a 600 KB file) is compressed as it streams, without a length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_and_unasked_answers_still_meet_the_compression_layer() {
    let (site, text) = compressible_site();
    let fixed = Wharf::start("", &site);
    let plain = get(&fixed.url("/text"), &[]).await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    assert_eq!(plain.text(), text);
    let image = get(&fixed.url("/image"), &[]).await;
    assert_eq!(image.header("vary"), None, "images are never compressed");

    let dir = static_tree();
    let big: String = (0..20_000)
        .map(|i| format!("row {i}: the quick brown fox\n"))
        .collect();
    assert!(big.len() > 512 * 1024);
    std::fs::write(dir.path().join("www/big.txt"), &big).expect("write");
    let wharf = Wharf::start_in(dir, "", STATIC_SITE);
    for encoding in ["gzip", "zstd"] {
        let reply = get(
            &wharf.url("/static/big.txt"),
            &[("accept-encoding", encoding)],
        )
        .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-encoding"), Some(encoding));
        assert_eq!(reply.header("content-length"), None, "streamed");
        assert_eq!(reply.header("vary"), Some("accept-encoding"));
        assert!(reply.body.len() < big.len() / 4, "{encoding} shrank it");
        if let Some(decoded) = decompress(encoding, &reply.body) {
            assert_eq!(decoded, big.as_bytes(), "{encoding} round trip");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_not_compressed() {
    let (site, _) = compressible_site();
    let wharf = Wharf::start("", &site);
    let reply = get(
        &wharf.url("/image"),
        &[("accept-encoding", "gzip, br, zstd")],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), "x".repeat(4096));

    let wharf = static_wharf();
    let reply = get(
        &wharf.url("/static/logo.png"),
        &[("accept-encoding", "gzip, br, zstd")],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.body.len(), 8 + 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_response_is_not_compressed() {
    let wharf = static_wharf();
    let reply = get(
        &wharf.url("/static/style.css"),
        &[
            ("range", "bytes=0-99"),
            ("accept-encoding", "gzip, br, zstd"),
        ],
    )
    .await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-encoding"), None);
    let total = css().len();
    let range = format!("bytes 0-99/{total}");
    assert_eq!(reply.header("content-range"), Some(range.as_str()));
    assert_eq!(&reply.body[..], &css().as_bytes()[..100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_on_the_fly_response_does_not_share_the_identity_strong_etag() {
    let wharf = static_wharf();
    let url = wharf.url("/static/style.css");
    let plain = get(&url, &[]).await;
    let gzip = get(&url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    let (plain, gzip) = (plain.header("etag"), gzip.header("etag"));
    // Different bytes need a different strong validator, or a weak one.
    assert!(
        gzip != plain || gzip.is_some_and(|etag| etag.starts_with("W/")),
        "identity {plain:?}, gzip {gzip:?}"
    );
}
