//! `[site.route.headers]` on static and fixed answers: a long cache
//! lifetime for hashed assets on every 200 and 304, from disk, from
//! memory over the fast path and through hyper over HTTP/2, and never on
//! a 404.

use super::*;

const ASSETS: &str = "[[site]]\n  [[site.route]]\n  path = \"/assets/\"\n  static = \"www\"\n\
       [site.route.headers]\n  Cache-Control = \"public, max-age=31536000, immutable\"\n  X-Content-Type-Options = \"nosniff\"\n\
     [[site.route]]\n  path = \"/ping\"\n  respond = \"pong\"\n\
       [site.route.headers]\n  Cache-Control = \"no-store\"\n";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn h2c() -> TestClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>()
}

/// The head of a raw HTTP/1.1 answer, lowercased.
fn raw_head(answer: &str) -> String {
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_answers_carry_the_routes_headers_from_disk_memory_and_as_304s() {
    let wharf = Wharf::start_in(static_tree(), "", ASSETS);
    let url = wharf.url("/assets/style.css");

    // From disk, then kept in memory and written by the fast path.
    let first = get(&url, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("cache-control"), Some(IMMUTABLE));
    assert_eq!(first.header("x-content-type-options"), Some("nosniff"));
    let etag = first.header("etag").expect("etag").to_owned();
    let kept = raw(
        wharf.addr,
        b"GET /assets/style.css HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = raw_head(&kept);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(head.matches("cache-control: ").count(), 1, "{head}");
    assert!(
        head.contains(&format!("\r\ncache-control: {IMMUTABLE}\r\n")),
        "{head}"
    );

    // A 304 keeps the lifetime (RFC 9110 15.4.5), on both paths.
    let revalidated = raw(
        wharf.addr,
        format!(
            "GET /assets/style.css HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let head = raw_head(&revalidated);
    assert!(head.starts_with("http/1.1 304"), "{head}");
    assert!(
        head.contains(&format!("\r\ncache-control: {IMMUTABLE}\r\n")),
        "{head}"
    );
    let reply = send(&h2c(), Method::GET, &url, &[("if-none-match", &etag)], b"").await;
    assert_eq!(reply.status, 304);
    assert_eq!(reply.header("cache-control"), Some(IMMUTABLE));
    let reply = send(&h2c(), Method::GET, &url, &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control"), Some(IMMUTABLE));

    // A missing asset must not be cached for a year.
    let missing = get(&wharf.url("/assets/missing.css"), &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("cache-control"), None);

    // A fixed answer gets its route's headers too.
    let pong = get(&wharf.url("/ping"), &[]).await;
    assert_eq!(pong.text(), "pong");
    assert_eq!(pong.header("cache-control"), Some("no-store"));
}

#[test]
fn headers_wharf_owns_or_that_are_not_headers_are_config_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("www")).expect("www");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[[site]]\n[[site.route]]\npath = \"/\"\nstatic = \"www\"\n\
         [site.route.headers]\nContent-Length = \"5\"\n\"Bad Name\" = \"x\"\nX-A = \"1\"\nx-a = \"2\"\n",
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .expect("run wharf check");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "wharf.toml:6:1: site[0].route[0].headers.Content-Length: \"Content-Length\" cannot be set by a route",
        "wharf.toml:7:1: site[0].route[0].headers.Bad Name: \"Bad Name\" is not a header name",
        "wharf.toml:9:1: site[0].route[0].headers.x-a: \"x-a\" is set twice",
    ] {
        assert!(said.contains(expected), "no {expected:?} in:\n{said}");
    }
}
