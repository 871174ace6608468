//! Which certificate a server presents: a fresh TLS handshake, verified
//! against the CA its webhooks trust, as the apiserver verifies it. This is
//! how the harness knows a subject serves (it answers TLS with the pair it
//! was given) and that a rotation is in force (it presents the new one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The DER of the first certificate in a PEM text.
pub fn pem_der(pem: &str) -> Result<Vec<u8>> {
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .context("no certificate in the PEM")??;
    Ok(cert.to_vec())
}

/// A TLS client that trusts only the certificates in `ca_pem`.
fn trusting(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(sidecar_injector::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The leaf certificate a fresh TLS handshake with `addr` presents,
/// verified against `ca_pem` for the address (as the apiserver verifies it).
/// Blocking: call it off the runtime's threads.
pub fn presented_cert(addr: SocketAddr, ca_pem: &str) -> Result<Vec<u8>> {
    let name = ServerName::IpAddress(addr.ip().into());
    let mut conn = rustls::ClientConnection::new(trusting(ca_pem)?, name)?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    sock.set_write_timeout(Some(Duration::from_secs(2)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .context("TLS handshake with the injector")?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .context("the injector presented no certificate")?;
    Ok(leaf.to_vec())
}

/// The leaf certificate pod `name` presents on `port`, over a port-forward
/// (the harness cannot reach a pod's address from the host), verified
/// against `ca_pem` for `server` (the Service's DNS name).
pub async fn presented_through_portforward(
    pods: &Api<Pod>,
    name: &str,
    port: i32,
    server: &str,
    ca_pem: &str,
) -> Result<Vec<u8>> {
    let port = u16::try_from(port).context("port out of range")?;
    let mut forward = pods
        .portforward(name, &[port])
        .await
        .with_context(|| format!("port-forward to {name}:{port}"))?;
    let stream = forward
        .take_stream(port)
        .context("the port-forward gave no stream")?;
    let connector = tokio_rustls::TlsConnector::from(trusting(ca_pem)?);
    let name = ServerName::try_from(server.to_string())?;
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, stream))
        .await
        .context("TLS handshake timed out")?
        .context("TLS handshake")?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .context("no certificate presented")?;
    drop(tls);
    forward.abort();
    Ok(leaf)
}
