//! `strip_prefix`: an app mounted under a path gets the rest of the path,
//! the query as it came, and `X-Forwarded-Prefix`, whichever way the
//! request reaches the upstream (the HTTP/1.1 fast path, HTTP/2 through
//! the general path, a small body, a trusted proxy in front).

use super::*;

/// `/api/` strips, `/keep/` does not, both to the echo backend.
fn mounted(backend: std::net::SocketAddr) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/api/\"\n  upstream = \"app\"\n  strip_prefix = true\n\
           [[site.route]]\n  path = \"/keep/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{backend}\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_gets_the_path_after_the_prefix_and_where_it_is_mounted() {
    let backend = echo().await;
    let wharf = Wharf::start("", &mounted(backend));
    for (path, upstream_path, query) in [
        ("/api/users/7?x=1&y=%20", "/users/7", "x=1&y=%20"),
        ("/api/", "/", ""),
        ("/api", "/", ""),
        ("/api?q=1", "/", "q=1"),
    ] {
        // A client's own X-Forwarded-Prefix is not believed.
        let reply = get(&wharf.url(path), &[("x-forwarded-prefix", "/evil")]).await;
        assert_eq!(reply.status, 200, "{path}");
        let seen = reply.json();
        assert_eq!(seen["path"], upstream_path, "{path}");
        assert_eq!(seen["query"].as_str().unwrap_or(""), query, "{path}");
        assert_eq!(seen["headers"]["x-forwarded-prefix"], "/api", "{path}");
        assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1", "{path}");
    }
    // Without strip_prefix the path goes as it came.
    let reply = get(&wharf.url("/keep/a?b"), &[]).await;
    let seen = reply.json();
    assert_eq!(seen["path"], "/keep/a");
    assert!(seen["headers"]["x-forwarded-prefix"].is_null(), "{seen}");

    // The access log keeps the path the client asked for.
    let logged = eventually(Duration::from_secs(5), || {
        wharf
            .access_log()
            .iter()
            .any(|l| l["url"]["path"] == "/api/users/7")
    })
    .await;
    assert!(logged, "{:?}", wharf.access_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_bodies_are_stripped_alike() {
    let backend = echo().await;
    let wharf = Wharf::start("", &mounted(backend));
    let h2 = h2c_client();
    let reply = send(
        &h2,
        Method::GET,
        &wharf.url("/api/v2/items?page=3"),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["path"], "/v2/items");
    assert_eq!(seen["query"], "page=3");
    assert_eq!(seen["headers"]["x-forwarded-prefix"], "/api");

    // A body over HTTP/2 (the bare client) and over HTTP/1.1.
    for client in [h2c_client(), client()] {
        let reply = send(&client, Method::POST, &wharf.url("/api/orders"), &[], b"{}").await;
        assert_eq!(reply.status, 200);
        let seen = reply.json();
        assert_eq!(seen["path"], "/orders");
        assert_eq!(seen["headers"]["x-forwarded-prefix"], "/api");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_in_front_mounts_wharf_under_its_own_prefix() {
    let backend = echo().await;
    let wharf = Wharf::start("trusted_proxies = [\"127.0.0.0/8\"]", &mounted(backend));
    let reply = get(&wharf.url("/api/x"), &[("x-forwarded-prefix", "/shop")]).await;
    let seen = reply.json();
    assert_eq!(seen["path"], "/x");
    assert_eq!(seen["headers"]["x-forwarded-prefix"], "/shop/api");
}
