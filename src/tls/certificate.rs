//! A certificate chain and its private key, parsed once into what rustls
//! serves (`CertifiedKey`) and what people and metrics want to know about it
//! (`CertificateInfo`: names, validity, issuer, serial).
//!
//! In: PEM text (a chain, leaf first, and a PKCS#8/PKCS#1/SEC1 key).
//! Out: a `Certificate`, or a `CertificateError` saying what is wrong with
//! the pair (unreadable, no certificate, no key, key not matching). Nothing
//! here touches the disk or the network.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// What is wrong with a certificate/key pair.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("no PEM private key found")]
    NoKey,
    #[error("the certificate is not valid X.509: {0}")]
    Parse(String),
    #[error("the private key is not usable: {0}")]
    Key(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
}

/// Facts about a served certificate, for logs, `wharf status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The first name the certificate is for (the site's first host).
    pub host: String,
    /// Every DNS name in the certificate (subject alternative names).
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The issuer's distinguished name, e.g. `CN=Pebble Intermediate CA 1a2b3c`.
    pub issuer: String,
    /// Serial number in hex, colon separated.
    pub serial: String,
}

impl CertificateInfo {
    /// Total validity period.
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }

    /// Time left before expiry at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.not_after.duration_since(now).unwrap_or_default()
    }

    /// Whether it covers exactly `names` (order and case ignored).
    pub fn covers_exactly(&self, names: &[String]) -> bool {
        let mut have: Vec<String> = self.names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut want: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        have.sort();
        have.dedup();
        want.sort();
        want.dedup();
        have == want
    }
}

/// A parsed pair, ready to serve.
#[derive(Debug)]
pub struct Certificate {
    pub key: Arc<CertifiedKey>,
    pub info: CertificateInfo,
    /// The PEM text it was read from, so it can be stored unchanged.
    pub chain_pem: String,
    pub key_pem: String,
}

impl Certificate {
    /// Parses a PEM chain and key and checks that they belong together.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Certificate, CertificateError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| CertificateError::Parse(e.to_string()))?;
        let leaf = chain.first().ok_or(CertificateError::NoCertificate)?;
        let info = info(leaf)?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => CertificateError::NoKey,
            other => CertificateError::Key(other.to_string()),
        })?;
        let signing = ring::default_provider()
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| CertificateError::Key(e.to_string()))?;
        let key = CertifiedKey::new(chain, signing);
        match key.keys_match() {
            Ok(()) => {}
            // The key type cannot report its public half: nothing to compare.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => return Err(CertificateError::KeyMismatch),
        }
        Ok(Certificate {
            key: Arc::new(key),
            info,
            chain_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }
}

/// Names, validity, issuer and serial of one DER certificate.
pub fn info(der: &[u8]) -> Result<CertificateInfo, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        if let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
    }
    let time = |t: i64| match u64::try_from(t) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    };
    Ok(CertificateInfo {
        host: names.first().cloned().unwrap_or_default(),
        names,
        not_before: time(cert.validity().not_before.timestamp()),
        not_after: time(cert.validity().not_after.timestamp()),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let generated = rcgen::generate_simple_self_signed(names).expect("generate");
        (generated.cert.pem(), generated.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_parses_with_its_names() {
        let (cert, key) = pair(&["a.test", "b.test"]);
        let parsed = Certificate::from_pem(&cert, &key).expect("parses");
        assert_eq!(parsed.info.names, vec!["a.test", "b.test"]);
        assert_eq!(parsed.info.host, "a.test");
        assert!(parsed
            .info
            .covers_exactly(&["b.test".into(), "A.test".into()]));
        assert!(parsed.info.not_after > SystemTime::now());
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let (cert, _) = pair(&["a.test"]);
        let (_, other_key) = pair(&["a.test"]);
        let error = Certificate::from_pem(&cert, &other_key).unwrap_err();
        assert!(matches!(error, CertificateError::KeyMismatch), "{error}");
    }

    #[test]
    fn missing_parts_are_named() {
        let (cert, key) = pair(&["a.test"]);
        assert!(matches!(
            Certificate::from_pem("", &key),
            Err(CertificateError::NoCertificate)
        ));
        assert!(matches!(
            Certificate::from_pem(&cert, "junk"),
            Err(CertificateError::NoKey)
        ));
    }
}
