//! Against Pebble: HTTP-01 and TLS-ALPN-01 issue, live renewal, the CA
//! going away and back, restart without a new order, reloads.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::client::*;
use crate::pebble::{wharf_with_pebble, Pebble};
use crate::support::{self, Wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_certificates_are_issued_per_site_and_verify_against_pebbles_root() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = format!(
        "{}{}",
        site(&["a.wharf.test", "www.a.wharf.test"], "site a"),
        site(&["b.wharf.test", "*.b.wharf.test"], "site b")
    );
    let (wharf, pebble, http, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "hsts = \"max-age=31536000\"",
        None,
    );
    wait_for_log(&wharf, "certificate obtained", 2, Duration::from_secs(60)).await;
    eprintln!(
        "http-01: both certificates served {:?} after wharf started listening",
        since_listening(&wharf, "certificate obtained")
    );
    for event in wharf.log_events("certificate obtained") {
        eprintln!(
            "http-01: {} issued in {} ms",
            event["hosts"], event["elapsed_ms"]
        );
    }
    let root = pebble.root().await;
    for (host, body) in [
        ("a.wharf.test", "site a"),
        ("www.a.wharf.test", "site a"),
        ("b.wharf.test", "site b"),
    ] {
        let (reply, _) = https_get(https_addr(https), host, "/hello", &root).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert_eq!(reply.text(), body, "{host}");
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000")
        );
    }
    // One certificate per site, with its exact hosts as names.
    let a = connect(https_addr(https), "www.a.wharf.test", &root, &[])
        .await
        .expect("tls");
    let b = connect(https_addr(https), "b.wharf.test", &root, &[])
        .await
        .expect("tls");
    assert_ne!(serial(&a), serial(&b));
    // A wildcard host has no certificate under ACME: that handshake fails.
    assert!(connect(https_addr(https), "x.b.wharf.test", &root, &[])
        .await
        .is_err());
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    let stored = walk(storage.path());
    assert!(
        stored.iter().any(|p| p.ends_with("account.json")),
        "{stored:?}"
    );
    assert!(
        stored.iter().any(|p| p.ends_with("a.wharf.test.key")),
        "{stored:?}"
    );
    for path in stored {
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
    }
    // HTTP still answers, redirecting hosts that have a certificate.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/x/y?q=1&r=2"),
        &[("host", "a.wharf.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        reply.header("location"),
        Some(format!("https://a.wharf.test:{https}/x/y?q=1&r=2").as_str())
    );
    assert!(reply.header("strict-transport-security").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_certificate_is_issued_in_the_handshake() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["alpn.wharf.test", "www.alpn.wharf.test"], "alpn site");
    let (wharf, pebble, http, https) =
        wharf_with_pebble(&sites, "tls-alpn-01", storage.path(), "", None);
    // HTTP serves the site while the certificate is being ordered.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/"),
        &[("host", "alpn.wharf.test")],
    )
    .await;
    assert!(
        reply.status == StatusCode::OK || reply.status == StatusCode::PERMANENT_REDIRECT,
        "{}",
        reply.status
    );
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let event = &wharf.log_events("certificate obtained")[0];
    eprintln!(
        "tls-alpn-01: issued in {} ms, served {:?} after wharf started listening",
        event["elapsed_ms"],
        since_listening(&wharf, "certificate obtained")
    );
    let root = pebble.root().await;
    for host in ["alpn.wharf.test", "www.alpn.wharf.test"] {
        let (reply, _) = https_get(https_addr(https), host, "/", &root).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "alpn site");
    }
    // HTTP/2 by ALPN on the same listener.
    let tls = connect(
        https_addr(https),
        "alpn.wharf.test",
        &root,
        &[b"h2", b"http/1.1"],
    )
    .await
    .expect("tls");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Validation went over TLS-ALPN-01, never HTTP.
    assert_eq!(pebble.count("http-01"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_is_served_live_while_a_keep_alive_connection_keeps_working() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["renew.wharf.test"], "renewing");
    // 40 s certificates renewed when less than 30 s remain: due 10 s in.
    let (wharf, pebble, http, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "renew_before = \"30s\"",
        Some(Duration::from_secs(40)),
    );
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    // From now on HTTP redirects this host, yet the HTTP-01 renewal below
    // validates: the challenge path is answered before the redirect.
    let reply = support::get(
        &format!("http://127.0.0.1:{http}/"),
        &[("host", "renew.wharf.test")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    let root = pebble.root().await;
    let mut kept = Https::open(https_addr(https), "renew.wharf.test", &root)
        .await
        .expect("connect");
    let first = kept.serial.clone();
    // Requests keep flowing on one connection across the swap.
    let mut sent = 0;
    let started = Instant::now();
    while wharf.log_events("certificate renewed").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no renewal; logs:\n{}",
            wharf.logs.lock().expect("logs").join("\n")
        );
        let reply = kept.get("renew.wharf.test", "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "renewing");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let event = &wharf.log_events("certificate renewed")[0];
    eprintln!(
        "renewal: done in {} ms, {:?} after the keep-alive connection opened ({sent} requests on it so far)",
        event["elapsed_ms"],
        started.elapsed()
    );
    // The old connection carries on with its certificate...
    for _ in 0..3 {
        let reply = kept.get("renew.wharf.test", "/").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(kept.serial, first);
    // ...while new connections get the new one, no restart.
    let (reply, second) = https_get(https_addr(https), "renew.wharf.test", "/", &root).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(
        second, first,
        "a new handshake gets the renewed certificate"
    );
    assert_eq!(wharf.log_events("config reloaded").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_down_at_renewal_keeps_the_old_certificate_and_renews_once_it_is_back() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["down.wharf.test"], "still here");
    let (wharf, mut pebble, _, https) = wharf_with_pebble(
        &sites,
        "http-01",
        storage.path(),
        "renew_before = \"30s\"",
        Some(Duration::from_secs(40)),
    );
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let old_root = pebble.root().await;
    let (_, first) = https_get(https_addr(https), "down.wharf.test", "/", &old_root).await;

    pebble.stop();
    let failed = "certificate renewal failed; the current certificate keeps serving";
    wait_for_log(&wharf, failed, 1, Duration::from_secs(40)).await;
    // Stay down a while: retries back off instead of hammering the CA.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failures = wharf.log_events(failed);
    eprintln!(
        "CA down: {} failed attempts in ~6 s: retry_in_ms {:?}",
        failures.len(),
        failures
            .iter()
            .map(|e| e["retry_in_ms"].clone())
            .collect::<Vec<_>>()
    );
    assert!(failures.len() <= 5, "{} attempts in 6 s", failures.len());
    assert!(failures
        .iter()
        .all(|e| e["error"].as_str().is_some_and(|s| !s.is_empty())));
    let (reply, during) = https_get(https_addr(https), "down.wharf.test", "/", &old_root).await;
    assert_eq!(reply.text(), "still here");
    assert_eq!(during, first, "the old certificate keeps being served");

    // Pebble comes back (with a new root and no memory of the account).
    let back = Instant::now();
    pebble.launch();
    wait_for_log(&wharf, "certificate renewed", 1, Duration::from_secs(30)).await;
    eprintln!(
        "CA back: renewed {:?} after Pebble restarted",
        back.elapsed()
    );
    let new_root = pebble.root().await;
    let (reply, after) = https_get(https_addr(https), "down.wharf.test", "/", &new_root).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(after, first);
    // The new Pebble did not know the account: its key was registered again.
    assert_eq!(
        wharf
            .log_events(
                "the ACME server does not know the stored account; registering its key again"
            )
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reuses_the_stored_account_and_certificate_without_a_new_order() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sites = site(&["again.wharf.test"], "again");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let tls = pebble.tls("http-01", storage.path(), "");
    let text = config(storage.path(), http, https, &sites, &tls);
    let first = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(&first, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let (_, before) = https_get(https_addr(https), "again.wharf.test", "/", &root).await;
    let account = walk(storage.path())
        .into_iter()
        .find(|p| p.ends_with("account.json"))
        .expect("stored account");
    let account_text = std::fs::read_to_string(&account).expect("read");
    let (orders, accounts) = (pebble.count("/order-plz"), pebble.count("/sign-me-up"));
    assert!(
        orders >= 1 && accounts >= 1,
        "pebble log: {:?}",
        pebble.log.lock().expect("log")
    );
    drop(first);

    let second = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(
        &second,
        "using the stored certificate",
        1,
        Duration::from_secs(10),
    )
    .await;
    let (reply, after) = https_get(https_addr(https), "again.wharf.test", "/", &root).await;
    assert_eq!(reply.text(), "again");
    assert_eq!(after, before, "the stored certificate is served");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pebble.count("/order-plz"), orders, "no new order");
    assert_eq!(pebble.count("/sign-me-up"), accounts, "no new account");
    assert_eq!(
        std::fs::read_to_string(&account).expect("read"),
        account_text
    );
    assert!(second.log_events("certificate obtained").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_orders_only_the_new_sites_certificate_and_keeps_serving_the_others() {
    let storage = tempfile::tempdir().expect("tempdir");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let tls = pebble.tls("http-01", storage.path(), "");
    let one = site(&["one.wharf.test"], "one");
    let text = config(storage.path(), http, https, &one, &tls);
    let wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let (_, before) = https_get(https_addr(https), "one.wharf.test", "/", &root).await;
    let orders = pebble.count("/order-plz");

    let two = format!("{one}{}", site(&["two.wharf.test"], "two"));
    std::fs::write(
        &wharf.config_path,
        config(storage.path(), http, https, &two, &tls),
    )
    .expect("rewrite");
    wharf.signal("HUP");
    wait_for_log(&wharf, "config reloaded", 1, Duration::from_secs(10)).await;
    wait_for_log(&wharf, "certificate obtained", 2, Duration::from_secs(60)).await;
    let (reply, _) = https_get(https_addr(https), "two.wharf.test", "/", &root).await;
    assert_eq!(reply.text(), "two");
    let (_, after) = https_get(https_addr(https), "one.wharf.test", "/", &root).await;
    assert_eq!(after, before, "the unchanged site keeps its certificate");
    assert!(pebble.count("/order-plz") > orders, "a new order");
    // Only the new site was ordered: the unchanged one was neither ordered
    // again nor renewed.
    let obtained: Vec<String> = wharf
        .log_events("certificate obtained")
        .iter()
        .map(|e| e["hosts"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(obtained, ["one.wharf.test", "two.wharf.test"]);
    assert!(wharf.log_events("certificate renewed").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_the_local_ca_to_acme_on_reload_orders_at_once_and_serves_meanwhile() {
    let storage = tempfile::tempdir().expect("tempdir");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let sites = site(&["switch.wharf.test"], "switch");
    let internal = format!(
        "mode = \"internal\"\nstorage = \"{}\"\n",
        storage.path().display()
    );
    let wharf = Wharf::start_with_config(
        tempfile::tempdir().expect("tempdir"),
        &config(storage.path(), http, https, &sites, &internal),
    );
    let local_ca =
        std::fs::read_to_string(storage.path().join("internal/ca.pem")).expect("local CA");
    let (reply, _) = https_get(https_addr(https), "switch.wharf.test", "/", &local_ca).await;
    assert_eq!(reply.status, StatusCode::OK);

    let acme = pebble.tls("tls-alpn-01", storage.path(), "");
    std::fs::write(
        &wharf.config_path,
        config(storage.path(), http, https, &sites, &acme),
    )
    .expect("rewrite");
    wharf.signal("HUP");
    wait_for_log(&wharf, "config reloaded", 1, Duration::from_secs(10)).await;
    wait_for_log(&wharf, "certificate obtained", 1, Duration::from_secs(60)).await;
    let root = pebble.root().await;
    let (reply, _) = https_get(https_addr(https), "switch.wharf.test", "/", &root).await;
    assert_eq!(reply.text(), "switch");
}
