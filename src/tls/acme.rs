//! ACME (RFC 8555) orders through instant-acme: the account, created once
//! and reused, and one order per certificate answered with HTTP-01 or
//! TLS-ALPN-01.
//!
//! In: the directory URL (plus an optional extra root to trust), contact
//! email, storage directory, and the host names of one site.
//! Out: a `Certificate` for exactly those names. Challenge answers are put
//! in `Challenges` for the HTTP listeners and the TLS resolver to serve, and
//! taken out again whatever the outcome. No ACME or TLS is written by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::certificate::Certificate;
use super::resolver::Challenges;
use super::storage;
use super::TlsError;
use crate::config::Challenge;

/// How many times an order refused with `badNonce` is tried again.
const BAD_NONCE_RETRIES: u32 = 3;
/// How long the CA may take to validate and issue before the attempt is
/// abandoned (and retried with backoff).
const ORDER_POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

/// One ACME directory and the account wharf uses with it.
pub struct Client {
    directory: String,
    directory_ca: Option<PathBuf>,
    email: Option<String>,
    /// `storage/acme/<directory>/`.
    pub dir: PathBuf,
    challenge: Challenge,
    account: tokio::sync::Mutex<Option<Account>>,
    challenges: Arc<Challenges>,
}

impl Client {
    pub fn new(
        directory: &str,
        directory_ca: Option<&Path>,
        email: Option<&str>,
        dir: PathBuf,
        challenge: Challenge,
        challenges: Arc<Challenges>,
    ) -> Client {
        Client {
            directory: directory.to_string(),
            directory_ca: directory_ca.map(Path::to_path_buf),
            email: email.map(str::to_string),
            dir,
            challenge,
            account: tokio::sync::Mutex::new(None),
            challenges,
        }
    }

    /// Orders a certificate for `names` and waits for it. A request the
    /// CA refused for a stale anti-replay nonce is tried again at once
    /// (RFC 8555 6.5; Let's Encrypt and Pebble both send `badNonce` now and
    /// then), up to `BAD_NONCE_RETRIES` times.
    pub async fn issue(&self, names: &[String]) -> Result<Certificate, TlsError> {
        let mut retries = 0;
        loop {
            match self.issue_once(names).await {
                Err(TlsError::Acme(instant_acme::Error::Api(problem)))
                    if retries < BAD_NONCE_RETRIES
                        && problem
                            .r#type
                            .as_deref()
                            .is_some_and(|t| t.ends_with(":badNonce")) =>
                {
                    retries += 1;
                    tracing::info!(
                        directory = %self.directory,
                        retries,
                        "the ACME server refused a nonce; trying again"
                    );
                }
                other => return other,
            }
        }
    }

    async fn issue_once(&self, names: &[String]) -> Result<Certificate, TlsError> {
        let account = self.account().await?;
        match self.order(&account, names).await {
            // The CA forgot the account (a test CA restarted, or the account
            // was deactivated): register the same key again, then retry once.
            Err(TlsError::Acme(instant_acme::Error::Api(problem)))
                if problem
                    .r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
            {
                tracing::warn!(
                    directory = %self.directory,
                    "the ACME server does not know the stored account; registering its key again"
                );
                *self.account.lock().await = None;
                let account = self.register_again().await?;
                self.order(&account, names).await
            }
            other => other,
        }
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, TlsError> {
        match &self.directory_ca {
            Some(path) => Account::builder_with_root(path).map_err(TlsError::Acme),
            None => Account::builder().map_err(TlsError::Acme),
        }
    }

    fn contact(&self) -> Vec<String> {
        self.email.iter().map(|e| format!("mailto:{e}")).collect()
    }

    /// The stored account, or a new one (stored at once).
    async fn account(&self) -> Result<Account, TlsError> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let path = self.dir.join("account.json");
        let account = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let credentials: AccountCredentials = serde_json::from_str(&text)
                    .map_err(|e| TlsError::Account(format!("{}: {e}", path.display())))?;
                tracing::debug!(path = %path.display(), "using the stored ACME account");
                self.builder()?.from_credentials(credentials).await?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let contact = self.contact();
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, credentials) = self
                    .builder()?
                    .create(&new, self.directory.clone(), None)
                    .await?;
                self.store(&credentials)?;
                tracing::info!(directory = %self.directory, account = %account.id(), "created an ACME account");
                account
            }
            Err(e) => return Err(TlsError::Storage { path, source: e }),
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    /// Registers the stored account key again (same key, new account URL).
    async fn register_again(&self) -> Result<Account, TlsError> {
        let mut slot = self.account.lock().await;
        let path = self.dir.join("account.json");
        let text = std::fs::read_to_string(&path).map_err(|e| TlsError::Storage {
            path: path.clone(),
            source: e,
        })?;
        let old: AccountCredentials = serde_json::from_str(&text)
            .map_err(|e| TlsError::Account(format!("{}: {e}", path.display())))?;
        let der = PrivatePkcs8KeyDer::from(old.private_key().secret_pkcs8_der().to_vec());
        let key = instant_acme::Key::from_pkcs8_der(der.clone_key())?;
        let (account, credentials) = self
            .builder()?
            .create_from_key((key, PrivateKeyDer::Pkcs8(der)), self.directory.clone())
            .await?;
        let contact = self.contact();
        if !contact.is_empty() {
            let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
            account.update_contacts(&contact).await?;
        }
        self.store(&credentials)?;
        *slot = Some(account.clone());
        Ok(account)
    }

    fn store(&self, credentials: &AccountCredentials) -> Result<(), TlsError> {
        let path = self.dir.join("account.json");
        let text =
            serde_json::to_vec_pretty(credentials).map_err(|e| TlsError::Account(e.to_string()))?;
        storage::write_atomic(&path, &text).map_err(|e| TlsError::Storage { path, source: e })
    }

    async fn order(&self, account: &Account, names: &[String]) -> Result<Certificate, TlsError> {
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut answered = Answered::new(&self.challenges);
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(TlsError::Order(format!(
                        "authorization for {} is {other:?}",
                        authorization.identifier()
                    )))
                }
            }
            let kind = match self.challenge {
                Challenge::Http01 => ChallengeType::Http01,
                Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            };
            let mut challenge = authorization
                .challenge(kind.clone())
                .ok_or_else(|| TlsError::Order(format!("the CA offers no {kind:?} challenge")))?;
            let key_authorization = challenge.key_authorization();
            let host = challenge.identifier().to_string();
            match self.challenge {
                Challenge::Http01 => {
                    self.challenges
                        .set_http(&challenge.token, key_authorization.as_str());
                    answered.tokens.push(challenge.token.clone());
                }
                Challenge::TlsAlpn01 => {
                    let key = alpn_certificate(&host, key_authorization.digest().as_ref())?;
                    self.challenges.set_alpn(&host, key);
                    answered.hosts.push(host);
                }
            }
            challenge.set_ready().await?;
        }
        let status = order.poll_ready(&ORDER_POLL).await?;
        if status != OrderStatus::Ready {
            let state = order.state();
            let reason = state
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| format!("order is {status:?}"));
            return Err(TlsError::Order(reason));
        }
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&ORDER_POLL).await?;
        drop(answered);
        Certificate::from_pem(&chain_pem, &key_pem)
            .map_err(|e| TlsError::Order(format!("the CA returned an unusable certificate: {e}")))
    }
}

/// Removes challenge answers when an order ends, however it ends.
struct Answered<'a> {
    challenges: &'a Challenges,
    tokens: Vec<String>,
    hosts: Vec<String>,
}

impl<'a> Answered<'a> {
    fn new(challenges: &'a Challenges) -> Self {
        Answered {
            challenges,
            tokens: Vec::new(),
            hosts: Vec::new(),
        }
    }
}

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.challenges.remove_http(token);
        }
        for host in &self.hosts {
            self.challenges.remove_alpn(host);
        }
    }
}

/// The self-signed certificate TLS-ALPN-01 validation expects (RFC 8737):
/// the host as its only name and the key authorization digest in a
/// critical acmeIdentifier extension.
fn alpn_certificate(host: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    let key = KeyPair::generate().map_err(|e| TlsError::Order(e.to_string()))?;
    let mut params = CertificateParams::new(vec![host.to_string()])
        .map_err(|e| TlsError::Order(e.to_string()))?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Order(e.to_string()))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = ring::default_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::Order(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}
