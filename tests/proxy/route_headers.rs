//! `[site.route.headers]`: set on a route's successful answers whichever
//! way they leave (the HTTP/1.1 fast path, HTTP/2 through the general
//! path, compressed or not), replacing the upstream's header of the same
//! name or removing it, and left off errors. Static routes' answers,
//! from disk, from memory and as 304s, are in `static_cors`.

use super::*;

/// A page long enough to be compressed, with the upstream's own
/// `Cache-Control` and `Server`; and a 404 with the same.
const PAGE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: public, max-age=60\r\nServer: app/1.0\r\nContent-Length: 2000\r\n\r\n";
const MISSING: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nCache-Control: public, max-age=60\r\nServer: app/1.0\r\nContent-Length: 4\r\n\r\ngone";

fn body() -> &'static [u8] {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BODY.get_or_init(|| b"<p>hello</p>".repeat(200)[..2000].to_vec())
}

async fn wharf_with_headers() -> Wharf {
    let (backend, _) = scripted_backend(vec![
        ("/page", vec![PAGE, body()], false),
        ("/missing", vec![MISSING], false),
    ])
    .await;
    Wharf::start(
        "",
        &format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\
               [site.route.headers]\n  Cache-Control = \"no-store\"\n  X-Frame-Options = \"DENY\"\n  Server = \"\"\n\n\
             [upstream.app]\nservers = [\"{backend}\"]\n"
        ),
    )
}

fn assert_set(reply: &Reply, how: &str) {
    assert_eq!(reply.status, 200, "{how}");
    let cache: Vec<_> = reply.headers.get_all("cache-control").iter().collect();
    assert_eq!(
        cache,
        ["no-store"],
        "{how}: the route's value replaces the app's"
    );
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{how}");
    assert_eq!(
        reply.header("server"),
        None,
        "{how}: an empty value removes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_headers_are_set_on_answers_whichever_way_they_leave() {
    let wharf = wharf_with_headers().await;
    let url = wharf.url("/page");

    let plain = get(&url, &[]).await;
    assert_set(&plain, "HTTP/1.1");
    assert_eq!(&plain.body[..], body());

    let compressed = get(&url, &[("accept-encoding", "gzip")]).await;
    assert_set(&compressed, "HTTP/1.1, gzip");
    assert_eq!(compressed.header("content-encoding"), Some("gzip"));

    let h2 = h2c_client();
    let reply = send(&h2, Method::GET, &url, &[], b"").await;
    assert_set(&reply, "HTTP/2");
    let reply = send(&h2, Method::GET, &url, &[("accept-encoding", "gzip")], b"").await;
    assert_set(&reply, "HTTP/2, gzip");

    // The raw bytes of the fast path: each header once.
    let raw_reply = raw(
        wharf.addr,
        b"GET /page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = raw_reply
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert_eq!(head.matches("cache-control:").count(), 1, "{head}");
    assert!(head.contains("\r\ncache-control: no-store\r\n"), "{head}");
    assert!(!head.contains("server:"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_what_the_app_said() {
    let wharf = wharf_with_headers().await;
    for client in [client(), h2c_client()] {
        let reply = send(&client, Method::GET, &wharf.url("/missing"), &[], b"").await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("cache-control"), Some("public, max-age=60"));
        assert_eq!(reply.header("server"), Some("app/1.0"));
        assert_eq!(reply.header("x-frame-options"), None);
    }
}
