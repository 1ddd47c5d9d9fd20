//! The life of one managed certificate: issue it when there is none, renew
//! it when it is due, and on failure keep serving the current one and retry
//! with exponential backoff.
//!
//! One task per certificate (per site). A certificate is due when less than
//! `renew_before` remains (a third of its lifetime by default). The task
//! sleeps until then, waking at least hourly to look again (wall clocks
//! jump). Failures back off from a base to a ceiling both scaled to the
//! certificate's lifetime: for a 90-day certificate 2.5 minutes doubling up to
//! 6 hours, which stays under Let's Encrypt's limit of 5 failed validations
//! per host per hour; for the seconds-long certificates of tests, seconds.
//! A renewal never happens sooner than a tenth of the lifetime after issue,
//! so a `renew_before` longer than the lifetime cannot loop.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::acme;
use super::certificate::{Certificate, CertificateInfo};
use super::internal::LocalCa;
use super::resolver::Store;
use super::storage;
use super::TlsError;

const CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// Backoff when there is no certificate yet (its lifetime is unknown).
const FIRST_BACKOFF: Duration = Duration::from_secs(150);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// Enough doublings to reach the ceiling from any base.
const MAX_FAILURE_STEPS: u32 = 16;
/// One attempt (account, order, validation, download) may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Who signs certificates.
#[derive(Clone)]
pub enum Issuer {
    Acme(Arc<acme::Client>),
    Internal(Arc<LocalCa>),
}

impl Issuer {
    async fn issue(&self, names: &[String]) -> Result<Certificate, TlsError> {
        match self {
            Issuer::Acme(client) => client.issue(names).await,
            Issuer::Internal(ca) => ca.issue(names),
        }
    }

    /// Where this issuer's certificates are stored.
    pub fn dir(&self) -> std::path::PathBuf {
        match self {
            Issuer::Acme(client) => client.dir.clone(),
            Issuer::Internal(ca) => ca
                .cert_path
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_default(),
        }
    }
}

/// One certificate to keep valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The site's first host: the resolver id and the storage file name.
    pub id: String,
    pub names: Vec<String>,
}

/// When `info` should be renewed.
pub fn due_at(info: &CertificateInfo, renew_before: Option<Duration>) -> SystemTime {
    let lifetime = info.lifetime();
    let before = renew_before.unwrap_or(lifetime / 3);
    let due = info
        .not_after
        .checked_sub(before)
        .unwrap_or(info.not_before);
    due.max(info.not_before + lifetime / 10)
}

/// How long to wait after `failures` failed attempts in a row.
pub fn backoff(failures: u32, current: Option<&CertificateInfo>) -> Duration {
    let (base, max) = match current {
        Some(info) => {
            let lifetime = info.lifetime();
            let base = (lifetime / 2000).clamp(Duration::from_secs(1), FIRST_BACKOFF);
            (base, (lifetime / 10).clamp(base, MAX_BACKOFF))
        }
        None => (FIRST_BACKOFF, MAX_BACKOFF),
    };
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(MAX_FAILURE_STEPS));
    let wait = base.saturating_mul(factor).min(max);
    // ±10% jitter so many wharfs behind one CA do not retry in step.
    wait.mul_f64(0.9 + fastrand::f64() * 0.2)
}

/// Loads a stored certificate for `item` if it is still usable.
pub fn stored(issuer: &Issuer, item: &Item) -> Option<Certificate> {
    let certificate = storage::load_pair(&issuer.dir(), &item.id)?;
    let usable = certificate.info.covers_exactly(&item.names)
        && certificate.info.not_after > SystemTime::now();
    usable.then_some(certificate)
}

/// Keeps `item` served until the task is aborted. `replace` says that
/// what the store serves for it now came from elsewhere (another issuer,
/// directory or host list): it keeps serving until this issuer's
/// certificate arrives, but is not renewed as if it were ours.
pub async fn run(
    item: Item,
    issuer: Issuer,
    store: Arc<Store>,
    renew_before: Option<Duration>,
    mut replace: bool,
) {
    let hosts = item.names.join(",");
    let mut failures = 0u32;
    loop {
        let current = store.get(&item.id);
        let now = SystemTime::now();
        // A certificate for other names (the site's hosts changed) keeps
        // serving the names it has while the new one is ordered.
        let covers = !replace
            && current
                .as_ref()
                .is_some_and(|c| c.info.covers_exactly(&item.names));
        if let Some(current) = current.as_ref().filter(|_| covers) {
            let due = due_at(&current.info, renew_before);
            if let Ok(wait) = due.duration_since(now) {
                if !wait.is_zero() {
                    tokio::time::sleep(wait.min(CHECK_INTERVAL)).await;
                    continue;
                }
            }
        }
        let started = Instant::now();
        let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, issuer.issue(&item.names)).await;
        let result = attempt.unwrap_or_else(|_| {
            Err(TlsError::Order(format!(
                "no certificate within {}s",
                ATTEMPT_TIMEOUT.as_secs()
            )))
        });
        match result {
            Ok(certificate) => {
                failures = 0;
                let renewed = current.is_some() && !replace;
                replace = false;
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                if let Err(error) = storage::save_pair(&issuer.dir(), &item.id, &certificate) {
                    tracing::error!(hosts = %hosts, error = %error, "cannot store the new certificate; it is served but will be issued again after a restart");
                }
                let not_after = humantime::format_rfc3339_seconds(certificate.info.not_after);
                let serial = certificate.info.serial.clone();
                store.install(&item.id, Arc::new(certificate));
                if renewed {
                    tracing::info!(hosts = %hosts, elapsed_ms, not_after = %not_after, serial = %serial, "certificate renewed");
                } else {
                    tracing::info!(hosts = %hosts, elapsed_ms, not_after = %not_after, serial = %serial, "certificate obtained");
                }
            }
            Err(error) => {
                failures += 1;
                // A CA that says "rate limited" will not change its mind
                // soon: go straight to the longest wait.
                if error.is_rate_limited() {
                    failures = failures.max(MAX_FAILURE_STEPS);
                }
                let wait = backoff(failures, current.as_ref().map(|c| &c.info));
                let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                if current.is_some() {
                    tracing::warn!(hosts = %hosts, error = %error, failures, retry_in_ms, "certificate renewal failed; the current certificate keeps serving");
                } else {
                    tracing::warn!(hosts = %hosts, error = %error, failures, retry_in_ms, "certificate order failed; HTTPS for these hosts fails until it succeeds");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(lifetime: Duration) -> CertificateInfo {
        let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        CertificateInfo {
            host: "a.test".into(),
            names: vec!["a.test".into()],
            not_before,
            not_after: not_before + lifetime,
            issuer: String::new(),
            serial: String::new(),
        }
    }

    #[test]
    fn a_rate_limited_answer_is_recognised() {
        let problem = |kind: &str| {
            let json = format!(
                r#"{{"type":"urn:ietf:params:acme:error:{kind}","detail":"x","status":429}}"#
            );
            let problem: instant_acme::Problem = serde_json::from_str(&json).expect("problem");
            TlsError::Acme(instant_acme::Error::Api(problem))
        };
        assert!(problem("rateLimited").is_rate_limited());
        assert!(!problem("connection").is_rate_limited());
        assert!(!TlsError::Order("x".into()).is_rate_limited());
    }

    #[test]
    fn due_a_third_before_expiry_by_default() {
        let day = Duration::from_secs(86_400);
        let cert = info(90 * day);
        assert_eq!(due_at(&cert, None), cert.not_before + 60 * day);
        assert_eq!(due_at(&cert, Some(30 * day)), cert.not_before + 60 * day);
    }

    #[test]
    fn renew_before_longer_than_the_lifetime_cannot_loop() {
        let cert = info(Duration::from_secs(1000));
        let due = due_at(&cert, Some(Duration::from_secs(5000)));
        assert_eq!(due, cert.not_before + Duration::from_secs(100));
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling_scaled_to_the_lifetime() {
        let day = Duration::from_secs(86_400);
        let long = info(90 * day);
        let first = backoff(1, Some(&long));
        assert!(first >= Duration::from_secs(135) && first <= Duration::from_secs(165));
        let later = backoff(30, Some(&long));
        assert!(later <= MAX_BACKOFF.mul_f64(1.1) && later >= MAX_BACKOFF.mul_f64(0.9));
        // Five failures in the first hour at most.
        let mut at = Duration::ZERO;
        let mut within_hour = 1;
        for n in 1..10 {
            at += backoff(n, Some(&long));
            if at < Duration::from_secs(3600) {
                within_hour += 1;
            }
        }
        assert!(within_hour <= 5, "{within_hour} attempts in the first hour");
        let short = info(Duration::from_secs(30));
        assert!(backoff(1, Some(&short)) <= Duration::from_millis(1100));
        assert!(backoff(10, Some(&short)) <= Duration::from_millis(3300));
    }
}
