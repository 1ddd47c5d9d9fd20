//! `[tls]`: how HTTPS listeners get certificates (ACME, a local CA, or
//! files), where they are stored, and the HTTP redirect and HSTS policy.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::defaults;

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tls {
    pub mode: TlsMode,
    pub email: Option<String>,
    /// ACME directory URL.
    pub directory: String,
    /// Extra root certificate to trust when talking to the ACME server.
    pub directory_ca: Option<PathBuf>,
    pub challenge: Challenge,
    /// Renew when less than this remains; `None` = a third of the lifetime.
    #[serde(with = "super::humantime_serde_compat::option")]
    pub renew_before: Option<Duration>,
    /// Account key, certificates and the local CA.
    pub storage: PathBuf,
    /// `mode = "files"`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub redirect_http: bool,
    pub hsts: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Acme,
    Internal,
    Files,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Challenge {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            mode: TlsMode::Off,
            email: None,
            directory: defaults::ACME_DIRECTORY.to_string(),
            directory_ca: None,
            challenge: Challenge::Http01,
            renew_before: None,
            storage: PathBuf::from(defaults::TLS_STORAGE),
            cert: None,
            key: None,
            redirect_http: true,
            hsts: None,
        }
    }
}
