//! Request ids and W3C trace context at the backend, in the response and
//! in the access log.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_and_traceparent_reach_the_backend_and_the_access_log() {
    let backend = echo().await;
    let wharf = Wharf::start("", &proxy_site(&[backend], false));
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Kept as the client sent them.
    let kept = get(
        &wharf.url("/api/kept"),
        &[
            ("host", "example.com"),
            ("x-request-id", "client-id-1"),
            ("traceparent", parent),
        ],
    )
    .await;
    let seen = kept.json();
    assert_eq!(seen["headers"]["x-request-id"], "client-id-1");
    assert_eq!(seen["headers"]["traceparent"], parent);
    assert_eq!(kept.header("x-request-id"), Some("client-id-1"));

    // Created when missing or malformed.
    let created = get(
        &wharf.url("/api/created"),
        &[("host", "example.com"), ("traceparent", "00-nonsense-01")],
    )
    .await;
    let seen = created.json();
    let id = seen["headers"]["x-request-id"]
        .as_str()
        .expect("request id")
        .to_string();
    let trace = seen["headers"]["traceparent"]
        .as_str()
        .expect("traceparent")
        .to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.header("x-request-id"), Some(id.as_str()));
    let parts: Vec<&str> = trace.split('-').collect();
    assert_eq!(parts.len(), 4, "{trace}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len(), parts[3]),
        ("00", 32, 16, "01")
    );

    let mut lines = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            lines = wharf.access_log();
            lines.len() >= 2
        })
        .await,
        "access log: {lines:?}"
    );
    let line = |path: &str| {
        lines
            .iter()
            .find(|l| l["url"]["path"] == path)
            .unwrap_or_else(|| panic!("no line for {path}: {lines:?}"))
            .clone()
    };
    let kept_line = line("/api/kept");
    assert_eq!(kept_line["http"]["request"]["id"], "client-id-1");
    assert_eq!(kept_line["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(kept_line["span"]["id"], "00f067aa0ba902b7");
    let created_line = line("/api/created");
    assert_eq!(created_line["http"]["request"]["id"], id.as_str());
    assert_eq!(created_line["trace"]["id"], parts[1]);
    assert_eq!(created_line["span"]["id"], parts[2]);
}
