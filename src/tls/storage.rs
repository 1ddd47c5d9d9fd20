//! Where certificates, keys and the ACME account live on disk.
//!
//! Layout under `[tls] storage`:
//! ```text
//! acme/<directory>/account.json          ACME account (id + key), one per directory URL
//! acme/<directory>/<host>.pem, <host>.key one certificate per site, named by its first host
//! internal/ca.pem, ca.key                 the local CA (mode = "internal")
//! internal/<host>.pem, <host>.key         certificates it issued
//! ```
//! Every file is written atomically (a temporary file in the same
//! directory, synced, then renamed) with mode 0600, so a crash never leaves
//! half a key and nobody else can read one. Directories are 0700.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::certificate::Certificate;

/// One storage directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn new(root: &Path) -> Storage {
        Storage {
            root: root.to_path_buf(),
        }
    }

    /// The directory for one ACME directory URL (staging and production
    /// must not share accounts or certificates).
    pub fn acme(&self, directory: &str) -> PathBuf {
        self.root.join("acme").join(slug(directory))
    }

    pub fn internal(&self) -> PathBuf {
        self.root.join("internal")
    }

    /// Checks that wharf can create files here, creating the directory.
    pub fn check_writable(&self) -> std::io::Result<()> {
        create_dir(&self.root)?;
        let probe = self
            .root
            .join(format!(".wharf-probe-{}", std::process::id()));
        write_atomic(&probe, b"")?;
        fs::remove_file(&probe)
    }
}

/// Creates `dir` (and parents) with mode 0700.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Paths of one stored certificate and key.
pub fn pair_paths(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let name = slug(host);
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// Reads a stored pair; `None` when absent or unreadable (it is then issued again).
pub fn load_pair(dir: &Path, host: &str) -> Option<Certificate> {
    let (cert_path, key_path) = pair_paths(dir, host);
    let chain = fs::read_to_string(&cert_path).ok()?;
    let key = fs::read_to_string(&key_path).ok()?;
    match Certificate::from_pem(&chain, &key) {
        Ok(certificate) => Some(certificate),
        Err(error) => {
            tracing::warn!(
                path = %cert_path.display(),
                error = %error,
                "stored certificate is unusable; a new one will be issued"
            );
            None
        }
    }
}

/// Stores a pair: the key first, so a stored certificate always has its key.
pub fn save_pair(dir: &Path, host: &str, certificate: &Certificate) -> std::io::Result<()> {
    let (cert_path, key_path) = pair_paths(dir, host);
    write_atomic(&key_path, certificate.key_pem.as_bytes())?;
    write_atomic(&cert_path, certificate.chain_pem.as_bytes())
}

/// A file-name-safe form of a host name or URL.
fn slug(text: &str) -> String {
    let text = text
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .replacen("*.", "wildcard.", 1);
    let slug: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    slug.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("secret.key");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("write again");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn directories_are_named_safely() {
        let storage = Storage::new(Path::new("/s"));
        assert_eq!(
            storage.acme("https://acme-v02.api.letsencrypt.org/directory"),
            Path::new("/s/acme/acme-v02.api.letsencrypt.org_directory")
        );
        assert_eq!(
            pair_paths(Path::new("/d"), "*.example.com").0,
            Path::new("/d/wildcard.example.com.pem")
        );
    }
}
