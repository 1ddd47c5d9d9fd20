//! `[tls]`: every key read and rendered back, each problem reported with
//! its key (including the mode's cross-key rules), and the shapes an email
//! and an HSTS value must have.

use crate::config::tls::{is_email, valid_hsts};
use crate::config::{Challenge, TlsMode};

#[test]
fn emails_are_checked_for_shape() {
    assert!(is_email("ops@example.com"));
    assert!(is_email("first.last+tag@sub.example.org"));
    for bad in [
        "ops",
        "@example.com",
        "ops@",
        "ops@example",
        "mailto:ops@example.com",
        "a b@example.com",
        "a@b@c.com",
    ] {
        assert!(!is_email(bad), "{bad}");
    }
}

fn parse(text: &str, dir: &std::path::Path) -> Result<crate::config::Config, String> {
    crate::config::parse(text, "wharf.toml", dir, &|_| None).map_err(|e| e.to_string())
}

#[test]
fn tls_section_renders_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\
                [tls]\nmode = \"acme\"\nemail = \"ops@example.com\"\nchallenge = \"tls-alpn-01\"\n\
                renew_before = \"20d\"\nstorage = \"state\"\nredirect_http = false\nhsts = \"max-age=600\"\n";
    let config = parse(text, dir.path()).expect("parses");
    assert_eq!(config.server.https, vec!["127.0.0.1:8443".parse().unwrap()]);
    assert_eq!(config.tls.mode, TlsMode::Acme);
    assert_eq!(config.tls.challenge, Challenge::TlsAlpn01);
    assert_eq!(config.tls.storage, dir.path().join("state"));
    assert_eq!(
        config.tls.renew_before,
        Some(std::time::Duration::from_secs(20 * 86400))
    );
    assert!(
        dir.path().join("state").is_dir(),
        "storage is created when checked"
    );
    let rendered = config.render_redacted();
    let again = parse(&rendered, dir.path()).unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(again.tls, config.tls);
    assert_eq!(again.server.https, config.server.https);
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[server]\nlisten = [\"127.0.0.1:8080\"]\n\
                [tls]\nmode = \"files\"\nemail = \"ops\"\ncert = \"missing.pem\"\n\
                directory = \"http://ca.test/dir\"\nhsts = \"forever\"\n";
    let errors = parse(text, dir.path()).expect_err("rejected");
    for needle in [
        "tls.email: \"ops\" is not an email address",
        "tls.cert: cannot read",
        "tls.directory: \"http://ca.test/dir\" is not an https:// URL",
        "tls.hsts:",
        "tls.mode: certificates are managed but server.https lists no HTTPS listener",
        "tls.key: mode = \"files\" needs tls.key",
    ] {
        assert!(errors.contains(needle), "{needle} not in:\n{errors}");
    }
}

#[test]
fn https_without_certificates_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n";
    let errors = parse(text, dir.path()).expect_err("rejected");
    assert!(
        errors.contains("wharf.toml:3:9: tls.mode: server.https needs certificates"),
        "the error points at the https listeners: {errors}"
    );
}

#[test]
fn a_mismatched_pair_and_an_unwritable_storage_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).expect("cert");
    let two = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).expect("cert");
    std::fs::write(dir.path().join("a.pem"), one.cert.pem()).expect("write");
    std::fs::write(dir.path().join("b.key"), two.signing_key.serialize_pem()).expect("write");
    let text = "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\
                [tls]\nmode = \"files\"\ncert = \"a.pem\"\nkey = \"b.key\"\n";
    let errors = parse(text, dir.path()).expect_err("rejected");
    assert!(
        errors.contains("does not belong to the certificate"),
        "{errors}"
    );

    std::fs::write(dir.path().join("file"), "").expect("write");
    let text = "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\
                [tls]\nmode = \"internal\"\nstorage = \"file/sub\"\n";
    let errors = parse(text, dir.path()).expect_err("rejected");
    assert!(
        errors.contains("tls.storage:") && errors.contains("is not writable"),
        "{errors}"
    );
}

#[test]
fn hsts_needs_a_max_age() {
    assert!(valid_hsts("max-age=31536000"));
    assert!(valid_hsts("max-age=63072000; includeSubDomains; preload"));
    assert!(!valid_hsts("includeSubDomains"));
    assert!(!valid_hsts("max-age=soon"));
}
