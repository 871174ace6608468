//! The serving certificate: loaded from PEM files, TLS 1.2 or newer, ring
//! as the crypto provider (no OpenSSL, no process-wide default needed).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// An I/O or TLS cause is part of the message and deliberately not exposed
/// as `source()`: printers that walk the chain (anyhow's `{:#}`, as the
/// binary prints errors) would otherwise show it twice.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("{cert} / {key}: {cause}")]
    Config {
        cert: String,
        key: String,
        cause: rustls::Error,
    },
}

/// The crypto provider every TLS piece of the project uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a server config from a certificate chain and key in PEM form.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_name.into(),
            message: format!("not a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert_name.into(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| TlsError::Pem {
            path: key_name.into(),
            message: format!("not a PEM private key: {e}"),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: key_name.into(),
            message: "no PRIVATE KEY block found".into(),
        })?;
    let config_err = |cause| TlsError::Config {
        cert: cert_name.into(),
        key: key_name.into(),
        cause,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(config_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(config_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads the two files and builds a server config.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|cause| TlsError::Read {
            path: p.display().to_string(),
            cause,
        })
    };
    let (c, k) = (read(cert)?, read(key)?);
    server_config(
        &c,
        &k,
        &cert.display().to_string(),
        &key.display().to_string(),
    )
    .map(Arc::new)
}
