//! Static serving end to end on a real directory tree: content types,
//! validators, ranges, directories, precompressed siblings, the SPA
//! fallback, both guards, and the answers kept in memory.

use std::path::PathBuf;

use http_body_util::BodyExt;

use super::*;

const SECRET: &[u8] = b"TOP-SECRET-BYTES";

/// `outer/secret` sits next to the root `outer/root`, which holds a few
/// files and symlinks pointing back out.
struct Site {
    _outer: tempfile::TempDir,
    root: PathBuf,
}

fn site() -> Site {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("root");
    std::fs::create_dir_all(root.join("docs")).expect("mkdir");
    std::fs::write(outer.path().join("secret"), SECRET).expect("write");
    std::fs::write(root.join("index.html"), "<h1>home</h1>").expect("write");
    std::fs::write(root.join("style.css"), "body { color: red }").expect("write");
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>").expect("write");
    std::fs::write(root.join("app.js"), "console.log(1)").expect("write");
    std::fs::write(root.join("app.js.gz"), b"\x1f\x8bfake-gzip").expect("write");
    std::fs::write(root.join("data.bin"), b"0123456789").expect("write");
    std::os::unix::fs::symlink(outer.path().join("secret"), root.join("link")).expect("symlink");
    std::os::unix::fs::symlink(outer.path(), root.join("outdir")).expect("symlink");
    std::os::unix::fs::symlink(outer.path().join("secret"), root.join("style.css.gz"))
        .expect("symlink");
    Site {
        _outer: outer,
        root,
    }
}

fn get(rest: &str) -> http::request::Builder {
    Request::get(format!("/static{rest}"))
}

async fn send(
    files: &StaticFiles,
    req: http::request::Builder,
    rest: &str,
) -> (Response<()>, Vec<u8>) {
    let req = req.body(()).expect("request");
    let response = files.serve(req, rest).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (Response::from_parts(parts, ()), bytes.to_vec())
}

fn header(response: &Response<()>, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn serves_a_file_with_its_content_type() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let (response, body) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, header::CONTENT_TYPE),
        "text/css; charset=utf-8"
    );
    assert_eq!(body, b"body { color: red }");
    assert!(!header(&response, header::LAST_MODIFIED).is_empty());
}

#[tokio::test]
async fn etag_then_if_none_match_is_not_modified() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let (response, _) = send(&files, get("/data.bin"), "/data.bin").await;
    let etag = header(&response, header::ETAG).to_owned();
    assert!(etag.starts_with('"'), "etag {etag:?}");
    let req = get("/data.bin").header(header::IF_NONE_MATCH, format!("\"nope\", W/{etag}"));
    let (response, body) = send(&files, req, "/data.bin").await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&response, header::ETAG), etag);
    assert!(body.is_empty());
    let req = get("/data.bin").header(header::IF_NONE_MATCH, "\"other\"");
    let (response, body) = send(&files, req, "/data.bin").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, b"0123456789");
}

#[tokio::test]
async fn range_returns_partial_content() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let req = get("/data.bin").header(header::RANGE, "bytes=2-5");
    let (response, body) = send(&files, req, "/data.bin").await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, header::CONTENT_RANGE), "bytes 2-5/10");
    assert_eq!(body, b"2345");
    // If-Range cannot be checked by ServeDir, so the whole file comes back.
    let req = get("/data.bin")
        .header(header::RANGE, "bytes=2-5")
        .header(header::IF_RANGE, "\"old\"");
    let (response, body) = send(&files, req, "/data.bin").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, b"0123456789");
}

#[tokio::test]
async fn head_has_headers_but_no_body() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let (response, body) = send(&files, Request::head("/static/data.bin"), "/data.bin").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, header::CONTENT_LENGTH), "10");
    assert!(body.is_empty());
}

#[tokio::test]
async fn directory_serves_index_and_redirects_without_slash() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let (response, body) = send(&files, get("/docs/"), "/docs/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(body, b"<h1>docs</h1>");
    let (response, body) = send(&files, get("/"), "/").await;
    assert_eq!(
        (response.status(), body.as_slice()),
        (StatusCode::OK, &b"<h1>home</h1>"[..])
    );
    // The redirect keeps the route prefix and the query.
    let (response, _) = send(&files, get("/docs?x=1"), "/docs").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&response, header::LOCATION), "/static/docs/?x=1");
}

#[tokio::test]
async fn gzip_sibling_is_served_when_accepted() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let req = get("/app.js").header(header::ACCEPT_ENCODING, "gzip");
    let (response, body) = send(&files, req, "/app.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, header::CONTENT_ENCODING), "gzip");
    assert_eq!(header(&response, header::VARY), "accept-encoding");
    assert!(header(&response, header::CONTENT_TYPE).contains("javascript"));
    assert_eq!(body, b"\x1f\x8bfake-gzip");
    let (response, body) = send(&files, get("/app.js"), "/app.js").await;
    assert_eq!(header(&response, header::CONTENT_ENCODING), "");
    assert_eq!(body, b"console.log(1)");
}

#[tokio::test]
async fn spa_falls_back_to_index_for_get_only() {
    let site = site();
    let files = StaticFiles::new(&site.root, true).expect("files");
    let (response, body) = send(&files, get("/app/users/7"), "/app/users/7").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, b"<h1>home</h1>");
    let (response, body) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(body, b"body { color: red }");
    assert_eq!(response.status(), StatusCode::OK);
    let req = Request::post("/static/app/users/7");
    let (response, _) = send(&files, req, "/app/users/7").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&response, header::ALLOW), "GET, HEAD");

    let plain = StaticFiles::new(&site.root, false).expect("files");
    let (response, body) = send(&plain, get("/app/users/7"), "/app/users/7").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(body, b"not found\n");
}

#[tokio::test]
async fn traversal_and_escaping_symlinks_are_refused() {
    let site = site();
    let payloads = [
        "/../secret",
        "/%2e%2e/secret",
        "/%2E%2E%2Fsecret",
        "/..%2fsecret",
        "/..\\secret",
        "/..%5csecret",
        "/%5c..%5csecret",
        "/%00",
        "/index.html%00.css",
        "/a/../../secret",
        "/./index.html",
        "/....//secret",
        "/...",
        "//secret",
        "/%ff",
        "/%2",
        "/%zz",
        "secret",
        "/link",
        "/outdir/secret",
        "/outdir/root/../secret",
    ];
    for spa in [false, true] {
        let files = StaticFiles::new(&site.root, spa).expect("files");
        for payload in payloads {
            let (response, body) = send(&files, Request::get("/"), payload).await;
            assert!(
                matches!(
                    response.status(),
                    StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
                ),
                "{payload} (spa {spa}) answered {}",
                response.status()
            );
            assert!(
                !body.windows(SECRET.len()).any(|w| w == SECRET),
                "{payload} leaked"
            );
        }
        // A precompressed sibling that is a symlink out is refused too.
        let req = get("/style.css").header(header::ACCEPT_ENCODING, "gzip");
        let (response, body) = send(&files, req, "/style.css").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(!body.windows(SECRET.len()).any(|w| w == SECRET));
    }
}

/// A kept file is answered from memory while it is unchanged, and read
/// again once its size, mtime or inode differ.
#[tokio::test]
async fn a_kept_file_is_served_until_it_changes() {
    let site = site();
    let files = StaticFiles::new(&site.root, false)
        .expect("files")
        .fresh_for(std::time::Duration::ZERO);
    let path = site.root.join("style.css");
    let (first, body) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(body, b"body { color: red }");
    assert_eq!(files.cache.len(), 1);
    let (second, body) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(body, b"body { color: red }");
    assert_eq!(first.headers(), second.headers());
    // Edited in place, another length.
    std::fs::write(&path, "body { color: blue; }").expect("write");
    let (_, body) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(body, b"body { color: blue; }");
    // Replaced by a rename with the same length and mtime: a new inode.
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let next = site.root.join("style.css.next");
    std::fs::write(&next, "body { color: pink; }").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&next)
        .and_then(|file| file.set_modified(modified))
        .expect("set mtime");
    std::fs::rename(&next, &path).expect("rename");
    let (_, body) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(body, b"body { color: pink; }");
    // Deleted.
    std::fs::remove_file(&path).expect("remove");
    let (response, _) = send(&files, get("/style.css"), "/style.css").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Within the freshness window the kept answer stands; conditions,
/// ranges and other encodings are answered correctly around it.
#[tokio::test]
async fn kept_answers_respect_conditions_ranges_and_encodings() {
    let site = site();
    let files = StaticFiles::new(&site.root, false).expect("files");
    let (response, body) = send(&files, get("/data.bin"), "/data.bin").await;
    assert_eq!(body, b"0123456789");
    let etag = header(&response, header::ETAG).to_owned();
    std::fs::write(site.root.join("data.bin"), b"9876543210").expect("write");
    // Trusted for a second: the same answer, not the new bytes.
    let (_, body) = send(&files, get("/data.bin"), "/data.bin").await;
    assert_eq!(body, b"0123456789");
    let req = get("/data.bin").header(header::IF_NONE_MATCH, &etag);
    let (response, body) = send(&files, req, "/data.bin").await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&response, header::ETAG), etag);
    assert!(body.is_empty());
    // A range is ServeDir's, from the file as it is now.
    let req = get("/data.bin").header(header::RANGE, "bytes=0-1");
    let (response, body) = send(&files, req, "/data.bin").await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"98");
    // The gzip sibling and the plain file are kept apart.
    let req = get("/app.js").header(header::ACCEPT_ENCODING, "gzip");
    let (response, body) = send(&files, req, "/app.js").await;
    assert_eq!(header(&response, header::CONTENT_ENCODING), "gzip");
    assert_eq!(body, b"\x1f\x8bfake-gzip");
    let (response, body) = send(&files, get("/app.js"), "/app.js").await;
    assert_eq!(header(&response, header::CONTENT_ENCODING), "");
    assert_eq!(body, b"console.log(1)");
    let req = get("/app.js").header(header::ACCEPT_ENCODING, "gzip");
    let (_, body) = send(&files, req, "/app.js").await;
    assert_eq!(body, b"\x1f\x8bfake-gzip");
}

/// A compressible file is kept compressed for each `Accept-Encoding`,
/// as the site's stack would compress it, and plain for clients that
/// ask for nothing.
#[tokio::test]
async fn compressible_files_are_kept_compressed() {
    let site = site();
    let page = "<p>a static page worth compressing</p>\n".repeat(50);
    std::fs::write(site.root.join("page.html"), &page).expect("write");
    let files = StaticFiles::new(&site.root, false).expect("files");
    let browser = "gzip, deflate, br, zstd";
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let req = get("/page.html").header(header::ACCEPT_ENCODING, browser);
        let (response, body) = send(&files, req, "/page.html").await;
        assert_eq!(header(&response, header::CONTENT_ENCODING), "zstd");
        assert!(header(&response, header::ETAG).starts_with("W/"));
        assert_eq!(header(&response, header::VARY), "accept-encoding");
        assert_eq!(
            header(&response, header::CONTENT_LENGTH),
            body.len().to_string()
        );
        let decoded = zstd::stream::decode_all(&body[..]).expect("zstd");
        assert_eq!(decoded, page.as_bytes());
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    let (response, body) = send(&files, get("/page.html"), "/page.html").await;
    assert_eq!(header(&response, header::CONTENT_ENCODING), "");
    assert_eq!(body, page.as_bytes());
    assert_eq!(files.cache.len(), 2);
}

/// A burst of requests for a file not kept yet all get it whole, and
/// it is kept once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_for_a_new_file_is_answered_whole() {
    let site = site();
    let files = Arc::new(StaticFiles::new(&site.root, false).expect("files"));
    let burst = (0..64).map(|_| {
        let files = files.clone();
        tokio::spawn(async move { send(&files, get("/data.bin"), "/data.bin").await })
    });
    for answer in futures_util::future::join_all(burst).await {
        let (response, body) = answer.expect("task");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, b"0123456789");
    }
    assert_eq!(files.cache.len(), 1);
}

/// An SPA fallback is not kept: the path may become a file.
#[tokio::test]
async fn spa_fallbacks_are_not_kept() {
    let site = site();
    let files = StaticFiles::new(&site.root, true).expect("files");
    let (_, body) = send(&files, get("/later.txt"), "/later.txt").await;
    assert_eq!(body, b"<h1>home</h1>");
    std::fs::write(site.root.join("later.txt"), "now a file").expect("write");
    let (_, body) = send(&files, get("/later.txt"), "/later.txt").await;
    assert_eq!(body, b"now a file");
}

#[test]
fn decode_accepts_ordinary_paths() {
    assert_eq!(decode_path("/a%20b/c.txt").as_deref(), Some("/a b/c.txt"));
    assert_eq!(decode_path("/dir/").as_deref(), Some("/dir/"));
    assert_eq!(decode_path("/caf%C3%A9").as_deref(), Some("/café"));
    assert_eq!(
        decode_path("/.well-known/x").as_deref(),
        Some("/.well-known/x")
    );
}
