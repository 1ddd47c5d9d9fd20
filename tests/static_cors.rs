//! Everything a site does besides proxying, through the real binary: static
//! files (types, caching, ranges, precompressed siblings, SPA fallback),
//! path traversal refused on the wire, CORS, response compression,
//! redirects, fixed responses and host-based site selection.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use support::*;

/// Unique bytes in the file beside the static root; no response may hold them.
const SECRET: &str = "WHARF-SECRET-5c1e0d9a-do-not-serve";

/// A few KB of CSS: big enough for the compression layer, and repetitive.
fn css() -> String {
    (0..120)
        .map(|i| format!(".rule-{i} {{ color: red; margin: {i}px; }}\n"))
        .collect()
}

/// `dir/secret.txt` sits beside the static root `dir/www`, which holds
/// ordinary files, precompressed siblings, a directory with an index and a
/// symlink `link` pointing back at `dir`.
fn static_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("docs")).expect("mkdir docs");
    std::fs::create_dir_all(www.join("a")).expect("mkdir a");
    std::fs::write(dir.path().join("secret.txt"), SECRET).expect("write secret");
    std::fs::write(www.join("index.html"), "<h1>home</h1>").expect("write");
    std::fs::write(www.join("docs/index.html"), "<h1>docs</h1>").expect("write");
    std::fs::write(www.join("style.css"), css()).expect("write");
    std::fs::write(www.join("app.js"), "console.log('plain');").expect("write");
    std::fs::write(www.join("app.js.gz"), b"\x1f\x8bprecompressed-gzip").expect("write");
    std::fs::write(www.join("app.js.br"), b"precompressed-brotli").expect("write");
    std::fs::write(www.join("data.bin"), b"0123456789").expect("write");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(www.join("logo.png"), png).expect("write");
    std::os::unix::fs::symlink(dir.path(), www.join("link")).expect("symlink");
    dir
}

/// `/static/` serves `www` plainly, `/app/` serves it as a single-page app.
const STATIC_SITE: &str = "[[site]]\n  [[site.route]]\n  path = \"/static/\"\n  static = \"www\"\n\
     [[site.route]]\n  path = \"/app/\"\n  static = \"www\"\n  spa = true\n";

fn static_wharf() -> Wharf {
    Wharf::start_in(static_tree(), "", STATIC_SITE)
}

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

/// The status code of a raw HTTP/1.1 response, if there is one.
fn raw_status(response: &str) -> Option<u16> {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

// ---- static files ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_served_with_their_content_type() {
    let wharf = static_wharf();
    let reply = get(&wharf.url("/static/style.css"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/css"));
    assert_eq!(reply.text(), css());
    assert!(reply.header("last-modified").is_some());

    let reply = get(&wharf.url("/static/app.js"), &[]).await;
    assert_eq!(reply.status, 200);
    let content_type = reply.header("content-type").unwrap_or("");
    assert!(content_type.contains("javascript"), "{content_type}");
    assert_eq!(reply.text(), "console.log('plain');");

    let reply = get(&wharf.url("/static/index.html"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert_eq!(reply.text(), "<h1>home</h1>");

    let reply = get(&wharf.url("/static/missing.css"), &[]).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_revalidation_answers_not_modified() {
    let wharf = static_wharf();
    let url = wharf.url("/static/data.bin");
    let first = get(&url, &[]).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let reply = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), Some(etag.as_str()));

    let weak = format!("\"stale\", W/{etag}");
    let reply = get(&url, &[("if-none-match", &weak)]).await;
    assert_eq!(reply.status, 304, "weak comparison matches");

    let reply = get(&url, &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"0123456789");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_request_returns_exactly_the_requested_bytes() {
    let wharf = static_wharf();
    let reply = get(&wharf.url("/static/data.bin"), &[("range", "bytes=2-5")]).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 2-5/10"));
    assert_eq!(&reply.body[..], b"2345");

    let reply = get(&wharf.url("/static/data.bin"), &[("range", "bytes=-3")]).await;
    assert_eq!(reply.status, 206);
    assert_eq!(&reply.body[..], b"789");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_request_has_the_headers_but_no_body() {
    let wharf = static_wharf();
    let reply = send(
        &client(),
        Method::HEAD,
        &wharf.url("/static/style.css"),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/css"));
    let length = file_len(&wharf.dir.path().join("www/style.css")).to_string();
    assert_eq!(reply.header("content-length"), Some(length.as_str()));
    assert!(reply.header("etag").is_some());
    assert!(reply.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_serves_its_index_html() {
    let wharf = static_wharf();
    let reply = get(&wharf.url("/static/docs/"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert_eq!(reply.text(), "<h1>docs</h1>");

    let reply = get(&wharf.url("/static/"), &[]).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, "<h1>home</h1>".into())
    );

    // Without the slash the browser is sent to the slashed URL, prefix kept.
    let reply = get(&wharf.url("/static/docs?x=1"), &[]).await;
    assert_eq!(reply.status, 308, "a permanent redirect, as Caddy's");
    assert_eq!(reply.header("location"), Some("/static/docs/?x=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompressed_sibling_is_served_when_the_client_accepts_it() {
    let wharf = static_wharf();
    let url = wharf.url("/static/app.js");

    let reply = get(&url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert!(reply
        .header("content-type")
        .unwrap_or("")
        .contains("javascript"));
    assert_eq!(reply.header("vary"), Some("accept-encoding"));
    assert_eq!(&reply.body[..], b"\x1f\x8bprecompressed-gzip");
    let gzip_etag = reply.header("etag").expect("etag").to_owned();

    let reply = get(&url, &[("accept-encoding", "br")]).await;
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert_eq!(&reply.body[..], b"precompressed-brotli");
    let br_etag = reply.header("etag").expect("etag").to_owned();

    let reply = get(&url, &[]).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), "console.log('plain');");
    let plain_etag = reply.header("etag").expect("etag").to_owned();

    assert!(
        gzip_etag != br_etag && br_etag != plain_etag && gzip_etag != plain_etag,
        "each encoding has its own ETag: {gzip_etag} {br_etag} {plain_etag}"
    );
}

/// One HTTP/1.1 answer: its status line, its headers but `date` and
/// `x-request-id` (sorted), and its body.
fn answer_parts(text: &str) -> (String, Vec<String>, String) {
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").to_string();
    let mut fields: Vec<String> = lines
        .filter(|line| {
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            name != "date" && name != "x-request-id"
        })
        .map(str::to_ascii_lowercase)
        .collect();
    fields.sort();
    (status, fields, body.to_string())
}

/// A kept file is answered on a new connection without hyper (the HTTP/1.1
/// fast path); a connection that a `HEAD` handed to hyper gets the full
/// stack's answer. Both must be the same answer: plain, compressed, as a
/// 304, with `Connection: close` honoured, and each logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_files_get_the_same_answer_with_or_without_hyper() {
    let wharf = static_wharf();
    let first = get(&wharf.url("/static/style.css"), &[]).await;
    let etag = first.header("etag").expect("etag").to_string();
    let cases = [
        String::new(),
        "Accept-Encoding: gzip\r\n".to_string(),
        "Accept-Encoding: gzip, deflate, br, zstd\r\n".to_string(),
        format!("If-None-Match: {etag}\r\n"),
        "Accept-Encoding: zstd\r\nIf-None-Match: \"other\"\r\n".to_string(),
    ];
    for extra in &cases {
        let request = format!(
            "GET /static/style.css HTTP/1.1\r\nHost: a\r\n{extra}Connection: close\r\n\r\n"
        );
        // The first read of this variant keeps it.
        let _ = raw(wharf.addr, request.as_bytes()).await;
        let fast = raw(wharf.addr, request.as_bytes()).await;
        let handed = format!("HEAD /static/style.css HTTP/1.1\r\nHost: a\r\n\r\n{request}");
        let both = raw(wharf.addr, handed.as_bytes()).await;
        let (_, full) = both.split_once("\r\n\r\n").expect("the HEAD answer");
        let (fast, full) = (answer_parts(&fast), answer_parts(full));
        assert_eq!(fast, full, "request with {extra:?}");
        assert!(
            fast.1.contains(&"connection: close".to_string()),
            "{fast:?}"
        );
    }
    let plain = answer_parts(
        &raw(
            wharf.addr,
            b"GET /static/style.css HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(plain.0, "HTTP/1.1 200 OK");
    assert_eq!(plain.2, css());
    let revalidated = answer_parts(&raw(wharf.addr, format!("GET /static/style.css HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n").as_bytes()).await);
    assert_eq!(revalidated.0, "HTTP/1.1 304 Not Modified");
    assert_eq!(revalidated.2, "");

    // Kept answers stay on a keep-alive connection and are logged.
    let two = "GET /static/style.css HTTP/1.1\r\nHost: a\r\nX-Request-Id: kept-1\r\n\r\n\
               GET /static/style.css HTTP/1.1\r\nHost: a\r\nX-Request-Id: kept-2\r\nConnection: close\r\n\r\n";
    let answers = raw(wharf.addr, two.as_bytes()).await;
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");
    assert_eq!(answers.matches(&css()).count(), 2);
    assert!(answers.contains("x-request-id: kept-2"), "{answers}");
    let logged = eventually(Duration::from_secs(5), || {
        wharf.access_log().iter().any(|line| {
            line["http"]["request"]["id"] == "kept-2"
                && line["http"]["response"]["status_code"] == 200
                && line["url"]["path"] == "/static/style.css"
        })
    })
    .await;
    assert!(logged, "access log: {:?}", wharf.access_log());
}

/// A kept file changed on disk is noticed on the fast path too (after the
/// second it is trusted for): the next answer is the new file, and the
/// connection that found out keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_file_changed_on_disk_is_served_new_on_the_fast_path() {
    let wharf = static_wharf();
    let request = b"GET /static/app.js HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let before = answer_parts(&raw(wharf.addr, request).await);
    assert_eq!(before.2, "console.log('plain');");
    assert_eq!(answer_parts(&raw(wharf.addr, request).await).2, before.2);
    std::fs::write(
        wharf.dir.path().join("www/app.js"),
        "console.log('edited, longer');",
    )
    .expect("edit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let twice = "GET /static/app.js HTTP/1.1\r\nHost: a\r\n\r\n\
                 GET /static/app.js HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let answers = raw(wharf.addr, twice.as_bytes()).await;
    assert_eq!(
        answers.matches("console.log('edited, longer');").count(),
        2,
        "{answers}"
    );
    assert!(!answers.contains("'plain'"), "{answers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_route_serves_index_html_for_unknown_paths() {
    let wharf = static_wharf();
    for path in ["/app/users/7", "/app/settings", "/app/"] {
        let reply = get(&wharf.url(path), &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some("text/html"), "{path}");
        assert_eq!(reply.text(), "<h1>home</h1>", "{path}");
    }
    // Real files still win over the fallback.
    let reply = get(&wharf.url("/app/style.css"), &[]).await;
    assert_eq!(reply.header("content-type"), Some("text/css"));
    assert_eq!(reply.text(), css());
    // The same directory without `spa` keeps answering 404.
    let reply = get(&wharf.url("/static/users/7"), &[]).await;
    assert_eq!(reply.status, 404);
}

// ---- traversal -------------------------------------------------------

const TRAVERSALS: &[&str] = &[
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E%2Fsecret.txt",
    "/static/..%2fsecret.txt",
    "/static/..\\secret.txt",
    "/static/..%5csecret.txt",
    "/static/%00",
    "/static/a/../../secret.txt",
    "/static/....//secret.txt",
    "/static/link/secret.txt",
    "/static/%2e%2e%2f%2e%2e%2fetc/passwd",
];

async fn assert_traversals_refused(wharf: &Wharf, prefix: &str) {
    for payload in TRAVERSALS {
        let path = payload.replacen("/static/", prefix, 1);
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = raw(wharf.addr, request.as_bytes()).await;
        let status = raw_status(&response);
        assert!(
            status.is_some_and(|code| (400..500).contains(&code)),
            "{path} was not refused:\n{response}"
        );
        assert!(
            !response.contains(SECRET),
            "{path} leaked the secret:\n{response}"
        );
        assert!(
            !response.contains("root:x:0:0"),
            "{path} leaked /etc/passwd:\n{response}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_payloads_never_leak_files_outside_the_static_root() {
    let wharf = static_wharf();
    // Sanity: the server does serve the root, and the secret is really there.
    let reply = get(&wharf.url("/static/index.html"), &[]).await;
    assert_eq!(reply.status, 200);
    let secret = std::fs::read_to_string(wharf.dir.path().join("www/link/secret.txt"));
    assert_eq!(secret.expect("symlink resolves on disk"), SECRET);

    assert_traversals_refused(&wharf, "/static/").await;
    // The SPA fallback must not turn a refusal into index.html or worse.
    assert_traversals_refused(&wharf, "/app/").await;
}

// ---- CORS ------------------------------------------------------------

fn cors_site(upstream: std::net::SocketAddr, cors: &str) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n{cors}\n\n\
         [upstream.app]\nservers = [\"{upstream}\"]\n"
    )
}

const CORS_WITH_CREDENTIALS: &str = "  [site.cors]\n  origins = [\"https://app.example\"]\n  \
     methods = [\"GET\", \"POST\"]\n  headers = [\"content-type\", \"authorization\"]\n  \
     credentials = true\n  max_age = \"1h\"\n";

/// Every value of a header that may repeat, joined with commas.
fn all_values(reply: &Reply, name: &str) -> String {
    let values: Vec<&str> = reply
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values.join(", ")
}

fn list_contains(value: Option<&str>, wanted: &str) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(wanted))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_answered_by_wharf_without_reaching_the_backend() {
    // Reaching this upstream would answer 502.
    let wharf = Wharf::start("", &cors_site(dead_addr(), CORS_WITH_CREDENTIALS));
    let reply = send(
        &client(),
        Method::OPTIONS,
        &wharf.url("/api/items"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "preflight answered by wharf: {}",
        reply.text()
    );
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(list_contains(
        reply.header("access-control-allow-methods"),
        "POST"
    ));
    assert!(list_contains(
        reply.header("access-control-allow-methods"),
        "GET"
    ));
    assert!(list_contains(
        reply.header("access-control-allow-headers"),
        "content-type"
    ));
    assert!(list_contains(
        reply.header("access-control-allow-headers"),
        "authorization"
    ));
    assert_eq!(reply.header("access-control-max-age"), Some("3600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_disallowed_origin_gets_no_allow_origin() {
    let backend = echo().await;
    let wharf = Wharf::start("", &cors_site(backend, CORS_WITH_CREDENTIALS));
    let preflight = send(
        &client(),
        Method::OPTIONS,
        &wharf.url("/api/items"),
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.header("access-control-allow-origin"), None);

    let reply = get(
        &wharf.url("/api/items"),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["path"], "/api/items");
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allowed_origin_on_a_real_request_gets_allow_origin_and_credentials() {
    let backend = echo().await;
    let wharf = Wharf::start("", &cors_site(backend, CORS_WITH_CREDENTIALS));
    let reply = get(
        &wharf.url("/api/items?page=2"),
        &[("origin", "https://app.example"), ("cookie", "session=1")],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(
        seen["path"], "/api/items",
        "the request reached the backend"
    );
    assert_eq!(seen["headers"]["origin"], "https://app.example");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    // A shared cache must not hand this answer to another origin.
    let vary = all_values(&reply, "vary");
    assert!(list_contains(Some(&vary), "origin"), "Vary: {vary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_wildcard_origin_answers_star() {
    let backend = echo().await;
    let cors = "  [site.cors]\n  origins = [\"*\"]\n";
    let wharf = Wharf::start("", &cors_site(backend, cors));
    let reply = get(&wharf.url("/"), &[("origin", "https://anyone.example")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-credentials"), None);

    let preflight = send(
        &client(),
        Method::OPTIONS,
        &wharf.url("/"),
        &[
            ("origin", "https://other.example"),
            ("access-control-request-method", "PUT"),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(list_contains(
        preflight.header("access-control-allow-methods"),
        "PUT"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_without_cors_forwards_options_to_the_backend_untouched() {
    let backend = echo().await;
    let wharf = Wharf::start("", &cors_site(backend, ""));
    let reply = send(
        &client(),
        Method::OPTIONS,
        &wharf.url("/api/items?x=1"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["method"], "OPTIONS");
    assert_eq!(seen["path"], "/api/items");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["headers"]["origin"], "https://app.example");
    assert_eq!(seen["headers"]["access-control-request-method"], "POST");
    assert_eq!(
        seen["headers"]["access-control-request-headers"],
        "content-type"
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

// ---- compression -----------------------------------------------------

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

// ---- redirects and fixed responses -----------------------------------

const REDIRECT_SITE: &str = "[[site]]\n  [[site.route]]\n  path = \"/old/\"\n  \
     redirect = \"https://example.com/new/\"\n\
     [[site.route]]\n  path = \"/moved\"\n  redirect = \"/elsewhere\"\n  status = 301\n\
     [[site.route]]\n  path = \"/down\"\n  respond = \"{\\\"ok\\\":false}\"\n  status = 503\n  \
     content_type = \"application/json\"\n\
     [[site.route]]\n  path = \"/health\"\n  respond = \"ok\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_route_appends_the_rest_of_the_path_and_query() {
    let wharf = Wharf::start("", REDIRECT_SITE);
    let reply = get(&wharf.url("/old/rest?q=1"), &[]).await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://example.com/new/rest?q=1")
    );

    let reply = get(&wharf.url("/old/a/b/c"), &[]).await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://example.com/new/a/b/c")
    );

    let reply = get(&wharf.url("/old/"), &[]).await;
    assert_eq!(reply.header("location"), Some("https://example.com/new/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_route_honours_its_status() {
    let wharf = Wharf::start("", REDIRECT_SITE);
    let reply = get(&wharf.url("/moved"), &[]).await;
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("/elsewhere"));
    // The target does not end with `/`, so nothing is appended.
    let reply = get(&wharf.url("/moved/deeper?x=1"), &[]).await;
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("/elsewhere"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_redirect_never_points_at_another_host() {
    let body = "[[site]]\n  [[site.route]]\n  path = \"/blog/\"\n  redirect = \"/\"\n";
    let wharf = Wharf::start("", body);
    for path in [
        "/blog//evil.example",
        "/blog/\\evil.example",
        "/blog//\\evil.example",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = raw(wharf.addr, request.as_bytes()).await;
        let location = response
            .lines()
            .find_map(|line| line.strip_prefix("location: "))
            .unwrap_or("");
        // Browsers read `//host` and `/\\host` as another origin.
        assert!(
            !location.starts_with("//") && !location.starts_with("/\\"),
            "{path} redirected off-site: {response}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_response_route_uses_its_status_and_content_type() {
    let wharf = Wharf::start("", REDIRECT_SITE);
    let reply = get(&wharf.url("/down"), &[]).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["ok"], false);

    let reply = get(&wharf.url("/health"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.text(), "ok");

    let reply = get(&wharf.url("/nothing-here"), &[]).await;
    assert_eq!(reply.status, 404);
}

// ---- host routing ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_site_their_host_names() {
    let site = |hosts: &str, body: &str| {
        format!("[[site]]\n{hosts}\n  [[site.route]]\n  path = \"/\"\n  respond = \"{body}\"\n")
    };
    let body = [
        site("hosts = [\"a.example\"]", "site-a"),
        site("hosts = [\"*.b.example\"]", "site-b"),
        site("", "site-default"),
    ]
    .concat();
    let wharf = Wharf::start("", &body);
    let cases = [
        ("a.example", "site-a"),
        ("A.Example:8080", "site-a"),
        ("a.example.", "site-a"),
        ("x.b.example", "site-b"),
        ("deep.x.b.example", "site-b"),
        ("b.example", "site-default"),
        ("xa.example", "site-default"),
        ("other.org", "site-default"),
        ("127.0.0.1", "site-default"),
    ];
    for (host, expected) in cases {
        let reply = get(&wharf.url("/"), &[("host", host)]).await;
        assert_eq!(reply.status, 200, "{host}");
        assert_eq!(reply.text(), expected, "Host: {host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_request_is_routed_by_its_target_host() {
    let body = "[[site]]\nhosts = [\"a.example\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"site-a\"\n\
                [[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"site-default\"\n";
    let wharf = Wharf::start("", body);
    // RFC 9112 3.2.2: with an absolute-form target the Host header is ignored.
    let cases = [
        ("http://a.example/", "other.org", "site-a"),
        ("http://other.org/", "a.example", "site-default"),
    ];
    for (target, host, expected) in cases {
        let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = raw(wharf.addr, request.as_bytes()).await;
        assert_eq!(raw_status(&response), Some(200), "{response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
        assert_eq!(body, expected, "GET {target} with Host: {host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_headers_list_a_preflight_gets_the_headers_it_asks_for() {
    // A front end POSTing JSON with a token: the common case, with no
    // `headers` written. A list, when written, is kept to.
    let preflight = |wharf: &Wharf| {
        let url = wharf.url("/api/items");
        async move {
            send(
                &client(),
                Method::OPTIONS,
                &url,
                &[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type, x-token"),
                ],
                b"",
            )
            .await
        }
    };
    let unlisted = "  [site.cors]\n  origins = [\"https://app.example\"]\n  credentials = true\n";
    let wharf = Wharf::start("", &cors_site(dead_addr(), unlisted));
    let reply = preflight(&wharf).await;
    assert_eq!(reply.status, 200);
    let allowed = reply.header("access-control-allow-headers");
    assert!(list_contains(allowed, "content-type"), "{allowed:?}");
    assert!(list_contains(allowed, "x-token"), "{allowed:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    drop(wharf);

    let wharf = Wharf::start("", &cors_site(dead_addr(), CORS_WITH_CREDENTIALS));
    let reply = preflight(&wharf).await;
    let allowed = reply.header("access-control-allow-headers");
    assert!(list_contains(allowed, "content-type"), "{allowed:?}");
    assert!(!list_contains(allowed, "x-token"), "{allowed:?}");
}
