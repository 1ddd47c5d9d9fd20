//! `wharf doctor` on certificates in files mode: an expired one fails, one
//! not naming a site's host warns for that host.

use std::path::{Path, PathBuf};

use super::support::*;
use super::{doctor, free_listen, write_config};

/// A self-signed pair for `names`, valid from `not_before` to `not_after`.
fn certificate(
    names: &[&str],
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A config serving `hosts` over HTTPS with the pair in files mode.
fn tls_config(dir: &Path, pair: (String, String), hosts: &str) -> PathBuf {
    std::fs::write(dir.join("site.pem"), pair.0).expect("cert");
    std::fs::write(dir.join("site.key"), pair.1).expect("key");
    let https = free_ports(1);
    let body = format!(
        "[tls]\nmode = \"files\"\ncert = \"site.pem\"\nkey = \"site.key\"\n\n\
         [[site]]\nhosts = [{hosts}]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
    );
    let path = write_config(dir, &free_listen(), &body);
    let text = std::fs::read_to_string(&path).expect("read");
    let text = text.replacen(
        "admin = \"off\"",
        &format!("admin = \"off\"\nhttps = [\"127.0.0.1:{https}\"]"),
        1,
    );
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = certificate(&["a.test"], (2020, 1, 1), (2021, 1, 1));
    let config = tls_config(dir.path(), pair, "\"a.test\"");
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    assert!(
        report.line("ok", &["site.pem", "load and match"]).is_some(),
        "{}",
        report.stdout
    );
    let line = report
        .line("FAIL", &["tls.cert", "site.pem"])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains("expired on 2021-01-01"), "{line}");
    assert!(line.contains("wharf reload"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_naming_a_site_host_warns_for_that_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = certificate(&["a.test", "*.b.test"], (2020, 1, 1), (2100, 1, 1));
    let config = tls_config(dir.path(), pair, "\"a.test\", \"www.b.test\", \"c.test\"");
    let report = doctor(&config).await;
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert!(
        report
            .line("ok", &["site.pem", "is valid until 2100-01-01"])
            .is_some(),
        "{}",
        report.stdout
    );
    let uncovered: Vec<&str> = report
        .lines("warn")
        .into_iter()
        .filter(|line| line.contains("tls.cert"))
        .collect();
    assert_eq!(uncovered.len(), 1, "{}", report.stdout);
    assert!(uncovered[0].contains("for c.test"), "{}", uncovered[0]);
    assert!(
        uncovered[0].contains("names only a.test, *.b.test"),
        "{}",
        uncovered[0]
    );
}
