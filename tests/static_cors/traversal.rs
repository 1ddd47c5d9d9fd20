//! Path traversal refused on the wire: no payload, encoded or through a
//! symlink, reads a file outside the static root, on a plain static
//! route or behind the single-page-app fallback.

use super::*;

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
