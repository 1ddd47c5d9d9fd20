//! `error_pages`: the site's HTML stands in for wharf's own error answers
//! (an upstream that is down, a missing file) over HTTP/1.1 and HTTP/2,
//! while an app's own errors pass as the app wrote them.

use super::*;

const DOWN: &str = "<h1>Back in a minute</h1>";
const LOST: &str = "<h1>No such page</h1>";

/// A site whose `/` proxies to `app`, `/down/` to a port nothing listens
/// on, `/files/` serves an empty directory; with `errors/` holding a
/// page for 5xx and one for 404.
async fn wharf_with_pages() -> Wharf {
    let (app, _) = scripted_backend(vec![(
        "/broken",
        vec![b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\napp failed"],
        false,
    )])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("errors")).expect("errors");
    std::fs::create_dir(dir.path().join("files")).expect("files");
    std::fs::write(dir.path().join("errors/5xx.html"), DOWN).expect("write");
    std::fs::write(dir.path().join("errors/404.html"), LOST).expect("write");
    let dead = dead_addr();
    Wharf::start_in(
        dir,
        "",
        &format!(
            "[[site]]\nerror_pages = \"errors\"\n\
               [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\
               [[site.route]]\n  path = \"/down/\"\n  upstream = \"down\"\n\
               [[site.route]]\n  path = \"/files/\"\n  static = \"files\"\n\n\
             [upstream.app]\nservers = [\"{app}\"]\n\
             [upstream.down]\nservers = [\"{dead}\"]\nretries = 0\n"
        ),
    )
}

fn assert_page(reply: &Reply, status: u16, page: &str, how: &str) {
    assert_eq!(reply.status, status, "{how}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{how}"
    );
    assert_eq!(reply.text(), page, "{how}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wharfs_own_errors_show_the_sites_pages_and_the_apps_pass_through() {
    let wharf = wharf_with_pages().await;
    let h2 = h2c_client();
    for (name, client) in [("HTTP/1.1", client()), ("HTTP/2", h2.clone())] {
        let down = send(&client, Method::GET, &wharf.url("/down/x"), &[], b"").await;
        assert_page(&down, 502, DOWN, name);
        let missing = send(
            &client,
            Method::GET,
            &wharf.url("/files/nope.css"),
            &[],
            b"",
        )
        .await;
        assert_page(&missing, 404, LOST, name);
        // The app's own 500 is the app's.
        let broken = send(&client, Method::GET, &wharf.url("/broken"), &[], b"").await;
        assert_eq!(broken.status, 500, "{name}");
        assert_eq!(broken.text(), "app failed", "{name}");
    }

    // The fast path's own 502, byte for byte: the page, its length, and
    // no body for HEAD.
    let answer = raw(
        wharf.addr,
        b"GET /down/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert!(
        answer.contains(&format!("\r\ncontent-length: {}\r\n", DOWN.len())),
        "{answer}"
    );
    assert!(answer.ends_with(DOWN), "{answer}");
    let head = raw(
        wharf.addr,
        b"HEAD /down/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}

#[test]
fn a_directory_without_pages_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("errors")).expect("errors");
    std::fs::write(dir.path().join("errors/oops.html"), "x").expect("write");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[[site]]\nerror_pages = \"errors\"\n[[site.route]]\npath = \"/\"\nrespond = \"hi\"\n",
    )
    .expect("write");
    let output = std::process::Command::new(WHARF)
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .expect("run wharf check");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("wharf.toml:2:15: site[0].error_pages:")
            && said.contains("holds no error page"),
        "{said}"
    );
}
