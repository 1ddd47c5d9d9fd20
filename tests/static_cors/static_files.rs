//! Static files: content types, ETag revalidation, ranges, HEAD,
//! directory indexes, precompressed siblings, kept files answered alike
//! with or without hyper, and the single-page-app fallback.

use super::*;

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_served_with_their_content_type() {
    let wharf = static_wharf();
    let reply = get(&wharf.url("/static/style.css"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(reply.text(), css());
    assert!(reply.header("last-modified").is_some());

    let reply = get(&wharf.url("/static/app.js"), &[]).await;
    assert_eq!(reply.status, 200);
    // Text says it is UTF-8, as Caddy's does, so a browser does not guess.
    assert_eq!(
        reply.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(reply.text(), "console.log('plain');");

    let reply = get(&wharf.url("/static/index.html"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(reply.text(), "<h1>home</h1>");
    // The answer kept in memory, served without hyper, says the same.
    let again = raw(
        wharf.addr,
        b"GET /static/index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        again.contains("\r\ncontent-type: text/html; charset=utf-8\r\n"),
        "{again}"
    );
    // JSON is UTF-8 by definition and takes no charset (RFC 8259).
    let reply = get(&wharf.url("/static/data.json"), &[]).await;
    assert_eq!(reply.header("content-type"), Some("application/json"));

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
    assert_eq!(
        reply.header("content-type"),
        Some("text/css; charset=utf-8")
    );
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
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
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
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(reply.text(), "<h1>home</h1>", "{path}");
    }
    // Real files still win over the fallback.
    let reply = get(&wharf.url("/app/style.css"), &[]).await;
    assert_eq!(
        reply.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(reply.text(), css());
    // The same directory without `spa` keeps answering 404.
    let reply = get(&wharf.url("/static/users/7"), &[]).await;
    assert_eq!(reply.status, 404);
}
