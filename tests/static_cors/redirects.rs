//! Redirect routes (the rest of the path and the query kept, their
//! status honoured, never another host) and fixed responses.

use super::*;

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
