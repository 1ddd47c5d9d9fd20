//! CORS: preflights answered by wharf without reaching the backend,
//! allowed and disallowed origins, credentials, the wildcard, the headers
//! a preflight may send, and sites without CORS forwarding OPTIONS
//! untouched.

use super::*;

fn cors_site(upstream: std::net::SocketAddr, cors: &str) -> String {
    format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n{cors}\n\n\
         [upstream.app]\nservers = [\"{upstream}\"]\n"
    )
}

const CORS_WITH_CREDENTIALS: &str = "  [site.cors]\n  origins = [\"https://app.example\"]\n  \
     methods = [\"GET\", \"POST\"]\n  headers = [\"content-type\", \"authorization\"]\n  \
     credentials = true\n  max_age = \"1h\"\n";

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
