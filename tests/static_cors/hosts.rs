//! Host-based site selection: exact names, wildcards, the default site,
//! and an absolute-form target routed by its own host.

use super::*;

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
