//! The serving pair the harness gives a subject it starts, on disk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sidecar_injector::certs;

use super::handshake::{pem_der, presented_cert};
use super::types::POLL;
use crate::wait::{Timeout, Wait};

/// A CA and a serving pair on disk, projected the way the kubelet updates a
/// mounted Secret: each pair goes into a fresh `..<n>` directory, then the
/// `..data` symlink is swapped to it in one rename, so a reader never sees a
/// new certificate with an old key. The pair is for 127.0.0.1 and
/// localhost.
pub struct CertFiles {
    /// Files readable by every user (for a container that runs as another
    /// user than the harness), as a Secret volume's default mode 0644 makes
    /// them.
    shared: bool,
    ca: certs::Ca,
    ca_pem: String,
    /// The serving cert in force on disk (PEM).
    cert_pem: String,
    /// How many pairs were written (names the projection dirs).
    generation: u32,
    dir: tempfile::TempDir,
}

impl CertFiles {
    pub fn new() -> Result<CertFiles> {
        CertFiles::create(false)
    }

    /// [`CertFiles::new`] readable by every user, for a container subject:
    /// the key is a throwaway pair of a CA that lives only in this process.
    pub fn shared() -> Result<CertFiles> {
        CertFiles::create(true)
    }

    fn create(shared: bool) -> Result<CertFiles> {
        let ca = certs::Ca::generate().context("generating a CA")?;
        let mut files = CertFiles {
            shared,
            ca_pem: ca.pem(),
            ca,
            cert_pem: String::new(),
            generation: 0,
            dir: tempfile::tempdir()?,
        };
        files.rotate()?;
        Ok(files)
    }

    /// Writes a new key and serving certificate from the same CA.
    pub fn rotate(&mut self) -> Result<()> {
        let bundle = self
            .ca
            .issue(
                "webhook",
                "injector-harness",
                &["127.0.0.1".into(), "localhost".into()],
            )
            .context("issuing a serving certificate")?;
        self.generation += 1;
        let dir = self.dir.path();
        let version = format!("..{}", self.generation);
        bundle.write_to(&dir.join(&version))?;
        if self.shared {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |m| std::fs::Permissions::from_mode(m);
            std::fs::set_permissions(dir, mode(0o755))?;
            std::fs::set_permissions(dir.join(&version), mode(0o755))?;
            std::fs::set_permissions(dir.join(&version).join(certs::KEY_FILE), mode(0o644))?;
        }
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&version, &tmp)?;
        std::fs::rename(&tmp, dir.join("..data"))?;
        for file in [certs::CA_CERT_FILE, certs::CERT_FILE, certs::KEY_FILE] {
            let link = dir.join(file);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(file), &link)?;
            }
        }
        if self.generation > 1 {
            let old = dir.join(format!("..{}", self.generation - 1));
            let _ = std::fs::remove_dir_all(old);
        }
        self.cert_pem = bundle.cert_pem;
        Ok(())
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join(certs::CERT_FILE)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join(certs::KEY_FILE)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join(certs::CA_CERT_FILE)
    }

    /// The directory holding the three files (and their projections).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until a fresh TLS handshake with `addr`, verified against the
    /// CA, presents the certificate now on disk: the [`Timeout`] apart after
    /// `limit`, naming the server as `server` ("the injector"), for a caller
    /// that says more.
    pub async fn wait_until_presented(
        &self,
        addr: SocketAddr,
        server: &str,
        limit: Duration,
    ) -> Result<Result<(), Timeout>> {
        let want = pem_der(&self.cert_pem)?;
        let what = format!("{server} at {addr} did not present its new certificate");
        let mut wait = Wait::new(what, limit, POLL);
        loop {
            let ca = self.ca_pem.clone();
            let got = tokio::task::spawn_blocking(move || presented_cert(addr, &ca)).await?;
            let why = match got {
                Ok(g) if g == want => return Ok(Ok(())),
                Ok(_) => "; it still presents its old certificate".to_string(),
                Err(e) => {
                    format!("; it still presents its old certificate (last handshake: {e:#})")
                }
            };
            if let Err(timeout) = wait.again_because(why).await {
                return Ok(Err(timeout));
            }
        }
    }
}
