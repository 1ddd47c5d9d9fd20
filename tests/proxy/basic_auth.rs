//! `[site.route.basic_auth]`: a protected route answers 401 with a
//! challenge until the right user and password come, over HTTP/1.1 and
//! HTTP/2, for proxied and kept static answers alike (the fast path never
//! answers it unchecked); `wharf hash-password` makes hashes it accepts.

use super::*;

use base64::Engine as _;

fn basic(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

/// `wharf hash-password`, the password on standard input.
fn hash_password(password: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(WHARF)
        .args(["hash-password", "--cost", "4"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run wharf hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_route_needs_the_password_on_every_path() {
    let backend = echo().await;
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$2b$04$"), "{hash}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("www")).expect("www");
    std::fs::write(dir.path().join("www/report.txt"), "numbers").expect("write");
    let wharf = Wharf::start_in(
        dir,
        "",
        &format!(
            "[[site]]\n  [[site.route]]\n  path = \"/admin/\"\n  upstream = \"app\"\n\
               [site.route.basic_auth]\n  realm = \"staging\"\n  users = {{ ana = \"{hash}\" }}\n\
             [[site.route]]\n  path = \"/reports/\"\n  static = \"www\"\n\
               [site.route.basic_auth]\n  users = {{ ana = \"{hash}\" }}\n\
             [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [upstream.app]\nservers = [\"{backend}\"]\n"
        ),
    );
    let good = basic("ana:correct horse");
    let h2 = h2c_client();
    for (name, client) in [("HTTP/1.1", client()), ("HTTP/2", h2.clone())] {
        for path in ["/admin/users", "/reports/report.txt"] {
            let url = wharf.url(path);
            let asked = send(&client, Method::GET, &url, &[], b"").await;
            assert_eq!(asked.status, 401, "{name} {path}");
            let challenge = asked.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Basic realm="), "{challenge}");
            let wrong = send(
                &client,
                Method::GET,
                &url,
                &[("authorization", &basic("ana:nope"))],
                b"",
            )
            .await;
            assert_eq!(wrong.status, 401, "{name} {path}");
            let unknown = send(
                &client,
                Method::GET,
                &url,
                &[("authorization", &basic("eve:correct horse"))],
                b"",
            )
            .await;
            assert_eq!(unknown.status, 401, "{name} {path}");
            let allowed = send(&client, Method::GET, &url, &[("authorization", &good)], b"").await;
            assert_eq!(allowed.status, 200, "{name} {path}");
        }
        // Unprotected routes are open.
        let open = send(&client, Method::GET, &wharf.url("/public"), &[], b"").await;
        assert_eq!(open.status, 200, "{name}");
    }

    // Raw HTTP/1.1, as the fast path reads it: a kept file and a proxied
    // route still ask, after an allowed request has kept the file.
    for path in ["/reports/report.txt", "/admin/x"] {
        let answer = raw(
            wharf.addr,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 401 "), "{path}: {answer}");
        assert!(!answer.contains("numbers"), "{answer}");
    }
    let realm = get(&wharf.url("/admin/"), &[]).await;
    assert_eq!(
        realm.header("www-authenticate"),
        Some("Basic realm=\"staging\", charset=\"UTF-8\"")
    );
}

#[test]
fn a_password_in_place_of_a_hash_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[[site]]\n[[site.route]]\npath = \"/\"\nrespond = \"hi\"\n\
         [site.route.basic_auth]\nusers = { ana = \"hunter2\" }\n",
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
        said.contains("site[0].route[0].basic_auth.users.ana: is not a bcrypt hash")
            && said.contains("wharf hash-password"),
        "{said}"
    );
}
