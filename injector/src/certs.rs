//! STUB: being written. CA and serving certificate generation (rcgen).
use std::path::Path;

#[derive(Debug, Clone)]
pub struct CertBundle {
    /// PEM of the self-signed CA.
    pub ca_pem: String,
    /// PEM of the serving certificate, signed by the CA.
    pub cert_pem: String,
    /// PEM (PKCS#8) of the serving key.
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0}")]
    Generate(String),
    #[error("{path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// A CA and a serving cert for `service` in `namespace`, with SANs service,
/// service.namespace, service.namespace.svc, plus `extra_sans` (DNS names or
/// IP addresses).
pub fn generate(service: &str, namespace: &str, extra_sans: &[String]) -> Result<CertBundle, CertError> {
    let _ = (service, namespace, extra_sans);
    Err(CertError::Generate("not written yet".into()))
}

impl CertBundle {
    /// Writes ca.crt, tls.crt and tls.key into `dir` (created if absent).
    pub fn write_to(&self, dir: &Path) -> Result<(), CertError> {
        let _ = dir;
        Err(CertError::Generate("not written yet".into()))
    }
    /// The base64 of the CA PEM, as a webhook's caBundle.
    pub fn ca_bundle(&self) -> String {
        String::new()
    }
}
