//! Without an ACME server: the local CA, files mode, the redirect and HSTS,
//! a handshake before any certificate, and `wharf check`. The handshake
//! with a local CA certificate (suites, resumption, no SNI) is in
//! `handshake.rs`.

use std::process::Command;
use std::time::Duration;

use http::StatusCode;

use crate::client::*;
use crate::support::{self, Wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_fails_the_handshake_cleanly_until_issued_while_http_keeps_working() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write");
    let (http, https) = (free_port(), free_port());
    // An ACME server that is not there: no certificate for a long while.
    let tls = format!(
        "mode = \"acme\"\ndirectory = \"https://127.0.0.1:{}/dir\"\ndirectory_ca = \"{}\"\nstorage = \"{}\"\nhsts = \"max-age=60\"\n",
        free_port(),
        dir.path().join("ca.pem").display(),
        dir.path().join("storage").display()
    );
    let text = config(
        dir.path(),
        http,
        https,
        &site(&["wait.wharf.test"], "plain"),
        &tls,
    );
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(
        &wharf,
        "certificate order failed; HTTPS for these hosts fails until it succeeds",
        1,
        Duration::from_secs(20),
    )
    .await;
    let error = connect(https_addr(https), "wait.wharf.test", &ca.pem, &[])
        .await
        .expect_err("no certificate yet");
    eprintln!("handshake before issue: {error}");
    // HTTP is served, not redirected to an HTTPS that cannot answer yet.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/page?x=1"),
        &[("host", "wait.wharf.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "plain");
    assert!(reply.header("strict-transport-security").is_none());
}

/// A wharf with `mode = "internal"` and its local CA (PEM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_mode_certificates_verify_against_the_local_ca() {
    let sites = format!(
        "{}{}",
        site(&["app.internal.test", "*.apps.internal.test"], "internal"),
        site(&["other.internal.test"], "other")
    );
    let (wharf, storage, _, https, ca) = internal_wharf(&sites, "");
    // `wharf run` says where the CA is, so users can trust it (in the
    // summary it prints once every listener is up).
    let ca_path = storage.path().join("internal/ca.pem");
    let said = format!("signed by the local CA {}", ca_path.display());
    let told = support::eventually(Duration::from_secs(10), || wharf.logs_contain(&said)).await;
    assert!(told, "{:?}", wharf.logs());
    for (host, body) in [
        ("app.internal.test", "internal"),
        ("x.apps.internal.test", "internal"),
        ("other.internal.test", "other"),
    ] {
        let (reply, _) = https_get(https_addr(https), host, "/", &ca).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert_eq!(reply.text(), body, "{host}");
    }
    // Another CA does not vouch for it.
    let stranger = TestCa::new();
    assert!(
        connect(https_addr(https), "app.internal.test", &stranger.pem, &[])
            .await
            .is_err()
    );
    // The CA key is private and reused on restart.
    use std::os::unix::fs::PermissionsExt;
    let key = storage.path().join("internal/ca.key");
    let mode = std::fs::metadata(&key)
        .expect("ca.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&wharf.config_path).expect("config");
    drop(wharf);
    let again = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    let (reply, _) = https_get(https_addr(https), "app.internal.test", "/", &ca).await;
    assert_eq!(reply.status, StatusCode::OK, "same CA after a restart");
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirects_to_https_keeping_path_and_query_but_not_the_challenge_path() {
    let sites = format!(
        "{}[[site]]\nhosts = [\"10.1.2.3\"]\n[[site.route]]\npath = \"/\"\nrespond = \"by ip\"\n",
        site(&["r.internal.test"], "app")
    );
    let (_wharf, storage, http, https, ca) =
        internal_wharf(&sites, "hsts = \"max-age=31536000; includeSubDomains\"");
    let url = |path: &str| format!("http://127.0.0.1:{http}{path}");
    for path in ["/", "/a/b?x=1&y=%20z", "/deep/path/?"] {
        let reply = support::get(&url(path), &[("host", "r.internal.test")]).await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(
            reply.header("location"),
            Some(format!("https://r.internal.test:{https}{path}").as_str()),
        );
        assert!(
            reply.header("strict-transport-security").is_none(),
            "no HSTS over HTTP"
        );
    }
    // The ACME challenge path is never redirected (an unknown token is
    // routed as usual).
    let reply = support::get(
        &url("/.well-known/acme-challenge/some-token"),
        &[("host", "r.internal.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "app");
    // A host without a certificate stays on HTTP.
    let reply = support::get(&url("/"), &[("host", "10.1.2.3")]).await;
    assert_eq!(reply.text(), "by ip");
    // Redirects are in the access log like any response.
    let logged = support::eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(storage.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["http"]["response"]["status_code"] == 308 && v["url"]["path"] == "/a/b")
    })
    .await;
    assert!(logged, "the redirect is in the access log");
    // HTTPS answers with HSTS.
    let (reply, _) = https_get(https_addr(https), "r.internal.test", "/a/b?x=1", &ca).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_http_false_keeps_serving_http() {
    let (_wharf, _storage, http, _, _) = internal_wharf(
        &site(&["stay.internal.test"], "stay"),
        "redirect_http = false",
    );
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/x"),
        &[("host", "stay.internal.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_reloads_the_pair_and_keeps_the_old_one_when_the_new_is_bad() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("site.pem"), dir.path().join("site.key"));
    let write_pair = |pair: &(String, String)| {
        std::fs::write(&cert, &pair.0).expect("write");
        std::fs::write(&key, &pair.1).expect("write");
    };
    write_pair(&ca.issue(&["files.test", "www.files.test"]));
    let (http, https) = (free_port(), free_port());
    let tls = format!(
        "mode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let text = config(
        dir.path(),
        http,
        https,
        &site(&["files.test", "www.files.test"], "files"),
        &tls,
    );
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    let (reply, first) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_eq!(reply.text(), "files");
    let mut kept = Https::open(https_addr(https), "www.files.test", &ca.pem)
        .await
        .expect("open");

    // A new pair, then SIGHUP: served at once, no restart.
    write_pair(&ca.issue(&["files.test", "www.files.test"]));
    wharf.signal("HUP");
    wait_for_log(&wharf, "config reloaded", 1, Duration::from_secs(10)).await;
    let (_, second) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_ne!(second, first, "the new pair is served");
    assert_eq!(kept.get("www.files.test", "/").await.status, StatusCode::OK);

    // A key that does not match: the reload is rejected, the old pair serves.
    let other = ca.issue(&["files.test"]);
    std::fs::write(&key, &other.1).expect("write");
    wharf.signal("HUP");
    wait_for_log(
        &wharf,
        "config reload rejected; the previous config keeps serving",
        1,
        Duration::from_secs(10),
    )
    .await;
    assert!(wharf.logs_contain("does not belong to the certificate"));
    let (reply, third) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(third, second, "the old pair keeps serving");
    // Garbage in the certificate file: rejected the same way.
    std::fs::write(&cert, "not a certificate").expect("write");
    wharf.signal("HUP");
    wait_for_log(
        &wharf,
        "config reload rejected; the previous config keeps serving",
        2,
        Duration::from_secs(10),
    )
    .await;
    let (_, fourth) = https_get(https_addr(https), "files.test", "/", &ca.pem).await;
    assert_eq!(fourth, second);
}

#[test]
fn check_reports_every_tls_problem_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, _) = ca.issue(&["c.test"]);
    let (_, wrong_key) = ca.issue(&["c.test"]);
    std::fs::write(dir.path().join("c.pem"), cert).expect("write");
    std::fs::write(dir.path().join("c.key"), wrong_key).expect("write");
    std::fs::write(dir.path().join("file"), "").expect("write");
    let run = |text: &str| {
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, text).expect("write");
        let out = Command::new(support::WHARF)
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("wharf check");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let head =
        "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\nadmin = \"off\"\n";
    let (ok, out) = run(&format!(
        "{head}[tls]\nmode = \"files\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
    ));
    assert!(!ok);
    assert!(
        out.contains("wharf.toml:7:8: tls.cert:")
            && out.contains("does not belong to the certificate"),
        "{out}"
    );
    let (ok, out) = run(&format!(
        "{head}[tls]\nmode = \"acme\"\nemail = \"ops at example.com\"\nstorage = \"file/state\"\ndirectory_ca = \"nope.pem\"\n"
    ));
    assert!(!ok);
    for needle in [
        ":7:9: tls.email: \"ops at example.com\" is not an email address",
        ":8:11: tls.storage:",
        "is not writable",
        ":9:16: tls.directory_ca: cannot read",
    ] {
        assert!(out.contains(needle), "{needle} not in:\n{out}");
    }
    let (ok, out) = run(&format!(
        "{head}[tls]\nmode = \"internal\"\nstorage = \"state\"\n"
    ));
    assert!(ok, "{out}");
    assert!(out.contains("is valid"), "{out}");
}
