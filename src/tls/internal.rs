//! `mode = "internal"`: a local certificate authority in the storage
//! directory that issues certificates for every site host, wildcards
//! included, without any network. For development and private networks:
//! users trust `internal/ca.pem` once (the path is printed by `wharf run`).
//!
//! The CA is created on first use (ECDSA P-256, 10 years) and reused after;
//! its key never leaves the storage directory (0600). Leaf certificates are
//! short-lived (7 days) and renewed by the same loop as ACME ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

use super::certificate::Certificate;
use super::storage;
use super::TlsError;

const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const LEAF_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Clock skew allowance for clients slightly behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The local CA.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    pub cert_path: PathBuf,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("cert_path", &self.cert_path)
            .finish()
    }
}

impl LocalCa {
    /// Loads the CA from `dir`, creating it when it does not exist yet.
    pub fn load_or_create(dir: &Path) -> Result<LocalCa, TlsError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let storage_error = |path: &Path, e: std::io::Error| TlsError::Storage {
            path: path.to_path_buf(),
            source: e,
        };
        if cert_path.exists() && key_path.exists() {
            let ca_pem =
                std::fs::read_to_string(&cert_path).map_err(|e| storage_error(&cert_path, e))?;
            let key_pem =
                std::fs::read_to_string(&key_path).map_err(|e| storage_error(&key_path, e))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Ca(e.to_string()))?;
            let issuer =
                Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|e| TlsError::Ca(e.to_string()))?;
            return Ok(LocalCa {
                issuer,
                ca_pem,
                cert_path,
            });
        }
        let key = KeyPair::generate().map_err(|e| TlsError::Ca(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "wharf local CA");
        name.push(DnType::OrganizationName, "wharf");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_LIFETIME;
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Ca(e.to_string()))?;
        let ca_pem = cert.pem();
        storage::write_atomic(&key_path, key.serialize_pem().as_bytes())
            .map_err(|e| storage_error(&key_path, e))?;
        storage::write_atomic(&cert_path, ca_pem.as_bytes())
            .map_err(|e| storage_error(&cert_path, e))?;
        tracing::info!(ca = %cert_path.display(), "created the local certificate authority");
        Ok(LocalCa {
            issuer: Issuer::new(params, key),
            ca_pem,
            cert_path,
        })
    }

    /// A new certificate for `names`, signed by the CA.
    pub fn issue(&self, names: &[String]) -> Result<Certificate, TlsError> {
        let key = KeyPair::generate().map_err(|e| TlsError::Ca(e.to_string()))?;
        let mut params =
            CertificateParams::new(names.to_vec()).map_err(|e| TlsError::Ca(e.to_string()))?;
        let mut subject = DistinguishedName::new();
        if let Some(first) = names.first() {
            subject.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = subject;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_LIFETIME;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| TlsError::Ca(e.to_string()))?;
        let chain = format!("{}{}", cert.pem(), self.ca_pem);
        Certificate::from_pem(&chain, &key.serialize_pem()).map_err(|e| TlsError::Ca(e.to_string()))
    }
}
