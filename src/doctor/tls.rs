//! Will HTTPS work? In `files` mode: the pair loads and matches (read as
//! `wharf run` reads it, `tls::load_files`), the certificate is valid now
//! and for more than [`SOON`], and it names every site host (the files
//! pair answers every name, so a host it does not cover meets a browser
//! warning). In `acme` mode: the CA validates on port 80 (http-01) or 443
//! (tls-alpn-01), so a listener there is needed unless a port forward
//! sends those ports to wharf. No DNS name is looked up.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::Finding;
use crate::config::{Challenge, Config, HostPattern, TlsMode};
use crate::tls::certificate::CertificateInfo;

/// A certificate expiring within this is a warning.
pub const SOON: Duration = Duration::from_secs(14 * 24 * 3600);

/// Findings for the `[tls]` mode; none when HTTPS is off or uses the local CA.
pub fn check(config: &Config, now: SystemTime) -> Vec<Finding> {
    match config.tls.mode {
        TlsMode::Files => files(config, now),
        TlsMode::Acme => vec![acme(config)],
        TlsMode::Internal | TlsMode::Off => Vec::new(),
    }
}

fn files(config: &Config, now: SystemTime) -> Vec<Finding> {
    // Config validation requires both in files mode.
    let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) else {
        return Vec::new();
    };
    let what = format!("tls.cert {}", cert.display());
    let loaded = match crate::tls::load_files(cert, key) {
        Ok(loaded) => loaded,
        Err(error) => {
            return vec![Finding::fail(
                what,
                error.to_string(),
                "give the certificate chain (leaf first) and the private key that signed it",
            )]
        }
    };
    let mut findings = vec![Finding::ok(format!(
        "{what} and tls.key {} load and match",
        key.display()
    ))];
    findings.push(validity(&what, &loaded.info, now));
    let hosts: Vec<&HostPattern> = config.sites.iter().flat_map(|s| &s.hosts).collect();
    let mut uncovered = 0;
    for host in hosts {
        if covers(&loaded.info.names, host) {
            continue;
        }
        uncovered += 1;
        findings.push(Finding::warn(
            format!("{what} for {host}"),
            format!(
                "the certificate names only {}: browsers refuse it for {host}",
                loaded.info.names.join(", ")
            ),
            match host {
                // ACME issues no wildcard over http-01 or tls-alpn-01.
                HostPattern::Wildcard(_) => format!("get a certificate that includes {host}"),
                _ => format!(
                    "get a certificate that includes {host}, or serve that site with mode = \"acme\""
                ),
            },
        ));
    }
    if uncovered == 0 {
        findings.push(Finding::ok(format!("{what} covers every site host")));
    }
    findings
}

fn validity(what: &str, info: &CertificateInfo, now: SystemTime) -> Finding {
    let date = |time: SystemTime| humantime::format_rfc3339_seconds(time).to_string();
    let renew = "install a renewed certificate and run `wharf reload` (or let wharf renew it: mode = \"acme\")";
    if now < info.not_before {
        return Finding::fail(
            what,
            format!("not valid before {}", date(info.not_before)),
            "check this machine's clock, or use a certificate that is valid now",
        );
    }
    if now >= info.not_after {
        return Finding::fail(what, format!("expired on {}", date(info.not_after)), renew);
    }
    let days = info.remaining(now).as_secs() / 86_400;
    if info.remaining(now) < SOON {
        return Finding::warn(
            what,
            format!("expires on {}, in {days} days", date(info.not_after)),
            renew,
        );
    }
    Finding::ok(format!(
        "{what} is valid until {} ({days} days)",
        date(info.not_after)
    ))
}

/// Whether a certificate with `names` (lowercase DNS names, `*.domain`
/// for wildcards) is valid for sites matching `host`. A wildcard covers
/// one label, as in a browser. `*` and IP addresses are not names a
/// certificate lists: nothing to check.
fn covers(names: &[String], host: &HostPattern) -> bool {
    match host {
        HostPattern::Any => true,
        HostPattern::Exact(name) if name.parse::<IpAddr>().is_ok() => true,
        HostPattern::Exact(name) => {
            let name = name.to_ascii_lowercase();
            names.contains(&name)
                || name
                    .split_once('.')
                    .is_some_and(|(_, parent)| names.contains(&format!("*.{parent}")))
        }
        // ".example.com": only "*.example.com" covers every such host.
        HostPattern::Wildcard(suffix) => names.contains(&format!("*{suffix}")),
    }
}

/// The CA connects to port 80 for http-01, to 443 for tls-alpn-01.
fn acme(config: &Config) -> Finding {
    let (challenge, key, port, listeners) = match config.tls.challenge {
        Challenge::Http01 => ("http-01", "server.listen", 80, &config.server.listen),
        Challenge::TlsAlpn01 => ("tls-alpn-01", "server.https", 443, &config.server.https),
    };
    let what = format!("tls.challenge {challenge}");
    if listeners.iter().any(|addr| addr.port() == port) {
        return Finding::ok(format!(
            "{what}: {key} has port {port}, where the CA validates"
        ));
    }
    Finding::warn(
        what,
        format!("the CA validates on port {port}, and no {key} address is on port {port}"),
        format!(
            "add \"0.0.0.0:{port}\" to {key} (unless a port forward sends port {port} here){}",
            match config.tls.challenge {
                Challenge::Http01 =>
                    ", or use challenge = \"tls-alpn-01\" with server.https on 443",
                Challenge::TlsAlpn01 => ", or use challenge = \"http-01\" with server.listen on 80",
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_wildcard_name_covers_one_label() {
        let have = names(&["example.com", "*.example.com"]);
        let exact = |h: &str| HostPattern::Exact(h.into());
        assert!(covers(&have, &exact("example.com")));
        assert!(covers(&have, &exact("www.example.com")));
        assert!(!covers(&have, &exact("a.b.example.com")));
        assert!(!covers(&have, &exact("other.test")));
        assert!(covers(&have, &HostPattern::Wildcard(".example.com".into())));
        assert!(!covers(
            &names(&["www.example.com"]),
            &HostPattern::Wildcard(".example.com".into())
        ));
        assert!(covers(&have, &exact("127.0.0.1")));
        assert!(covers(&have, &HostPattern::Any));
    }

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().display().to_string();
        let text = text.replace("STORAGE", &storage);
        crate::config::parse(&text, "test.toml", dir.path(), &|_| None).expect("config")
    }

    #[test]
    fn acme_warns_when_the_ca_cannot_reach_the_challenge_port() {
        let http01 = "[server]\nlisten = [\"0.0.0.0:8080\"]\nhttps = [\"0.0.0.0:8443\"]\n\
                      [tls]\nmode = \"acme\"\nstorage = \"STORAGE\"\n";
        let finding = acme(&config(http01));
        assert_eq!(finding.level, super::super::Level::Warn, "{finding}");
        assert!(finding.to_string().contains("port 80"), "{finding}");

        let on_80 = http01.replace("8080", "80");
        assert_eq!(acme(&config(&on_80)).level, super::super::Level::Ok);

        let alpn = on_80.replace(
            "mode = \"acme\"",
            "mode = \"acme\"\nchallenge = \"tls-alpn-01\"",
        );
        let finding = acme(&config(&alpn));
        assert_eq!(finding.level, super::super::Level::Warn, "{finding}");
        assert!(finding.to_string().contains("port 443"), "{finding}");
        let on_443 = alpn.replace("8443", "443");
        assert_eq!(acme(&config(&on_443)).level, super::super::Level::Ok);
    }
}
