//! The webhook's TLS material: a private CA and a serving certificate it signs.
//!
//! The apiserver calls an admission webhook over HTTPS and trusts exactly the
//! `caBundle` of the webhook configuration, so no public CA is involved: this
//! module makes a self-signed CA, signs a serving certificate for the
//! Service's in-cluster DNS names with it, and hands out the CA PEM as the
//! `caBundle`. [`generate`] drops the CA key once the serving cert is signed
//! (rotating then means a new pair and a new caBundle); a kept [`Ca`] issues
//! further serving certs that the same caBundle trusts.
//!
//! Keys are ECDSA P-256 (small, fast, accepted by every apiserver TLS stack),
//! and the serving key is written as PKCS#8, which rustls reads directly.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};

use crate::config::check_dns1123_label;

/// Common name of the generated CA.
pub const CA_COMMON_NAME: &str = "sidecar-injector-ca";
/// File (and Secret key) holding the CA certificate.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File (and Secret key) holding the serving certificate.
pub const CERT_FILE: &str = "tls.crt";
/// File (and Secret key) holding the serving key.
pub const KEY_FILE: &str = "tls.key";

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The serving certificate lives a year: long enough not to surprise anyone,
/// short enough that a leaked key expires.
pub const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// The CA lives ten years, so re-issuing serving certs from a kept CA would
/// not require touching the webhook configuration's caBundle.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Both certificates start this long before "now", so an apiserver whose
/// clock is a little behind ours does not reject a freshly made cert.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);

/// X.509 caps a common name at 64 characters (RFC 5280 `ub-common-name`).
const MAX_COMMON_NAME: usize = 64;
/// The last second X.509 (GeneralizedTime, four-digit years) can express.
const LAST_X509_SECOND: u64 = 253_402_300_799;

#[derive(Debug, Clone)]
pub struct CertBundle {
    /// PEM of the self-signed CA.
    pub ca_pem: String,
    /// PEM of the serving certificate, signed by the CA.
    pub cert_pem: String,
    /// PEM (PKCS#8) of the serving key.
    pub key_pem: String,
}

/// An I/O or TLS cause is part of the message and deliberately not exposed
/// as `source()`: printers that walk the chain (anyhow's `{:#}`, as the
/// binary prints errors) would otherwise show it twice.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0}")]
    Generate(String),
    #[error("{path}: cannot read: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: {cause}")]
    Write { path: String, cause: std::io::Error },
}

/// A CA and a serving cert for `service` in `namespace`, with SANs service,
/// service.namespace, service.namespace.svc, plus `extra_sans` (DNS names or
/// IP addresses).
///
/// An extra SAN that parses as an IP address becomes an IP SAN (needed when
/// the apiserver calls the webhook by `url` at an address); anything else must
/// be a valid DNS name, optionally with a leading `*.` wildcard label.
/// Duplicates are dropped. Errors name the offending value.
pub fn generate(
    service: &str,
    namespace: &str,
    extra_sans: &[String],
) -> Result<CertBundle, CertError> {
    Ca::generate()?.issue(service, namespace, extra_sans)
}

/// A CA that keeps its key, so it can sign more than one serving cert:
/// renewing the serving cert from the same CA leaves the webhook's caBundle
/// valid, so a rotation never fails an admission call.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA.
    pub fn generate() -> Result<Ca, CertError> {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = common_name(CA_COMMON_NAME);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut ca_params, SystemTime::now(), CA_VALIDITY)?;
        let ca_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error("CA key"))?;
        let issuer = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(rcgen_error("CA"))?;
        Ok(Ca { issuer })
    }

    /// PEM of the CA certificate (the caBundle's content).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A fresh serving key and certificate signed by this CA, as
    /// [`generate`] describes; each call makes a new key.
    pub fn issue(
        &self,
        service: &str,
        namespace: &str,
        extra_sans: &[String],
    ) -> Result<CertBundle, CertError> {
        check_dns1123_label(service).map_err(|m| CertError::Generate(format!("service: {m}")))?;
        check_dns1123_label(namespace)
            .map_err(|m| CertError::Generate(format!("namespace: {m}")))?;

        let fqdn = format!("{service}.{namespace}.svc");
        let mut sans: Vec<SanType> = Vec::new();
        for name in [
            service.to_string(),
            format!("{service}.{namespace}"),
            fqdn.clone(),
        ] {
            push_unique(&mut sans, dns_san(&name)?);
        }
        for entry in extra_sans {
            push_unique(&mut sans, parse_san(entry)?);
        }

        let mut params = CertificateParams::default();
        // The CN is informational (clients match on SANs); a long service and
        // namespace can push the FQDN past the X.509 limit, so fall back to the
        // service name, which is at most 63 characters.
        params.distinguished_name = common_name(if fqdn.len() <= MAX_COMMON_NAME {
            &fqdn
        } else {
            service
        });
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, SystemTime::now(), SERVING_VALIDITY)?;
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error("serving key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error("serving certificate"))?;

        Ok(CertBundle {
            ca_pem: self.issuer.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl CertBundle {
    /// Writes ca.crt, tls.crt and tls.key into `dir` (created if absent).
    ///
    /// The names are those of a `kubernetes.io/tls` Secret, so the directory
    /// looks like the Secret mounted into the pod. On unix the key is created
    /// with mode 0600 (and an existing key file is narrowed to 0600 before
    /// the new key is written into it).
    pub fn write_to(&self, dir: &Path) -> Result<(), CertError> {
        std::fs::create_dir_all(dir).map_err(|cause| write_error(dir, cause))?;
        write_public(&dir.join(CA_CERT_FILE), &self.ca_pem)?;
        write_public(&dir.join(CERT_FILE), &self.cert_pem)?;
        write_private(&dir.join(KEY_FILE), &self.key_pem)
    }

    /// Reads back the three files [`CertBundle::write_to`] writes.
    pub fn read_from(dir: &Path) -> Result<CertBundle, CertError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|cause| CertError::Read {
                path: path.display().to_string(),
                cause,
            })
        };
        Ok(CertBundle {
            ca_pem: read(CA_CERT_FILE)?,
            cert_pem: read(CERT_FILE)?,
            key_pem: read(KEY_FILE)?,
        })
    }

    /// The base64 of the CA PEM, as a webhook's caBundle.
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }
}

fn push_unique(sans: &mut Vec<SanType>, san: SanType) {
    if !sans.contains(&san) {
        sans.push(san);
    }
}

/// One `--san` entry: an IP address, else a DNS name.
fn parse_san(entry: &str) -> Result<SanType, CertError> {
    let value = entry.trim();
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    dns_san(value)
}

fn dns_san(name: &str) -> Result<SanType, CertError> {
    let lower = name.to_ascii_lowercase();
    check_dns_name(&lower)
        .map_err(|why| CertError::Generate(format!("subject alternative name {name:?}: {why}")))?;
    let ia5 = lower
        .as_str()
        .try_into()
        .map_err(|e| CertError::Generate(format!("subject alternative name {name:?}: {e}")))?;
    Ok(SanType::DnsName(ia5))
}

/// A DNS name as TLS clients match it: labels of letters, digits and inner
/// hyphens, at most 63 characters each and 253 in all, the last label not
/// all digits; a leading `*.` wildcard label is allowed.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.ends_with('.') {
        return Err("a certificate name has no trailing dot");
    }
    let rest = name.strip_prefix("*.").unwrap_or(name);
    if rest.contains('*') {
        return Err("a wildcard is only allowed as the whole first label");
    }
    rustls::pki_types::DnsName::try_from(rest)
        .map(|_| ())
        .map_err(|_| "not a valid DNS name or IP address")
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn set_validity(
    params: &mut CertificateParams,
    now: SystemTime,
    validity: Duration,
) -> Result<(), CertError> {
    let not_before = now.checked_sub(CLOCK_SKEW).unwrap_or(now);
    let not_after = now
        .checked_add(validity)
        .filter(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() <= LAST_X509_SECOND)
        })
        .ok_or_else(|| {
            CertError::Generate(format!(
                "the system clock is out of range: now + {} days is not a valid certificate date",
                validity.as_secs() / DAY.as_secs()
            ))
        })?;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    Ok(())
}

fn rcgen_error(what: &'static str) -> impl Fn(rcgen::Error) -> CertError {
    move |e| CertError::Generate(format!("cannot generate the {what}: {e}"))
}

fn write_error(path: &Path, cause: std::io::Error) -> CertError {
    CertError::Write {
        path: path.display().to_string(),
        cause,
    }
}

fn write_public(path: &Path, contents: &str) -> Result<(), CertError> {
    std::fs::write(path, contents).map_err(|cause| write_error(path, cause))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> Result<(), CertError> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let err = |cause| write_error(path, cause);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    // `mode` only applies to a new file; narrow an existing one before the
    // key goes into it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.flush().map_err(err)
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> Result<(), CertError> {
    write_public(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{CertificateError, RootCertStore};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
        let certs = rustls_pemfile::certs(&mut pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(certs.len(), 1, "one certificate per PEM");
        certs
    }

    fn roots(ca_pem: &str) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in certs(ca_pem) {
            roots.add(cert).unwrap();
        }
        Arc::new(roots)
    }

    fn server_verifier(ca_pem: &str) -> Arc<WebPkiServerVerifier> {
        WebPkiServerVerifier::builder_with_provider(roots(ca_pem), provider())
            .build()
            .unwrap()
    }

    /// Verifies `leaf_pem` as a server certificate for `name` at `at`.
    fn verify_at(
        ca_pem: &str,
        leaf_pem: &str,
        name: &str,
        at: UnixTime,
    ) -> Result<(), rustls::Error> {
        let leaf = certs(leaf_pem).remove(0);
        let name = ServerName::try_from(name.to_string()).unwrap();
        server_verifier(ca_pem)
            .verify_server_cert(&leaf, &[], &name, &[], at)
            .map(|_| ())
    }

    fn verify(bundle: &CertBundle, name: &str) -> Result<(), rustls::Error> {
        verify_at(&bundle.ca_pem, &bundle.cert_pem, name, UnixTime::now())
    }

    fn in_days(days: u64) -> UnixTime {
        UnixTime::since_unix_epoch(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                + DAY * days as u32,
        )
    }

    fn bundle() -> CertBundle {
        generate(
            "svc",
            "ns",
            &["127.0.0.1".into(), "webhook.example.com".into()],
        )
        .unwrap()
    }

    #[test]
    fn serving_cert_chains_to_the_ca_for_every_san() {
        let b = bundle();
        for name in [
            "svc",
            "svc.ns",
            "svc.ns.svc",
            "webhook.example.com",
            "127.0.0.1",
        ] {
            verify(&b, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn other_names_fail_verification() {
        let b = bundle();
        for name in [
            "other.ns.svc",
            "svc.other.svc",
            "svc.ns.svc.cluster",
            "10.0.0.1",
        ] {
            match verify(&b, name) {
                Err(rustls::Error::InvalidCertificate(_)) => {}
                other => panic!("{name}: expected an invalid-certificate error, got {other:?}"),
            }
        }
    }

    #[test]
    fn another_ca_does_not_trust_the_serving_cert() {
        let a = bundle();
        let b = bundle();
        assert_ne!(a.ca_pem, b.ca_pem);
        // Both CAs have the same subject, so the chain is found by name and
        // then refused on the signature: the key is what is trusted.
        let err = verify_at(&b.ca_pem, &a.cert_pem, "svc.ns.svc", UnixTime::now()).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    CertificateError::BadSignature | CertificateError::UnknownIssuer
                )
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_kept_ca_issues_new_keys_the_same_bundle_trusts() {
        let ca = Ca::generate().unwrap();
        let first = ca.issue("svc", "ns", &["127.0.0.1".into()]).unwrap();
        let second = ca.issue("svc", "ns", &["127.0.0.1".into()]).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem, "one caBundle for both");
        assert_ne!(first.key_pem, second.key_pem, "a rotation makes a new key");
        assert_ne!(first.cert_pem, second.cert_pem);
        for leaf in [&first.cert_pem, &second.cert_pem] {
            verify_at(&ca.pem(), leaf, "127.0.0.1", UnixTime::now()).unwrap();
        }
        assert!(!format!("{ca:?}").contains("PRIVATE"), "{ca:?}");
    }

    #[test]
    fn serving_cert_is_for_server_auth_only() {
        let b = bundle();
        // Server verification (above) requires serverAuth when an EKU is
        // present; refusing it as a client cert proves the EKU is present and
        // carries nothing else.
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(&b.ca_pem), provider())
            .build()
            .unwrap();
        let leaf = certs(&b.cert_pem).remove(0);
        assert!(verifier
            .verify_client_cert(&leaf, &[], UnixTime::now())
            .is_err());
        // The serverAuth OID (1.3.6.1.5.5.7.3.1) is in the DER.
        let server_auth = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
        assert!(leaf.windows(server_auth.len()).any(|w| w == server_auth));
    }

    #[test]
    fn validity_is_about_a_year_and_tolerates_skew() {
        let b = bundle();
        let verify = |at| verify_at(&b.ca_pem, &b.cert_pem, "svc.ns.svc", at);
        verify(in_days(364)).unwrap();
        assert!(matches!(
            verify(in_days(366)),
            Err(rustls::Error::InvalidCertificate(_))
        ));
        let a_bit_ago = SystemTime::now() - Duration::from_secs(30 * 60);
        verify(UnixTime::since_unix_epoch(
            a_bit_ago.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
        ))
        .unwrap();
    }

    #[test]
    fn key_is_pkcs8_and_matches_the_serving_cert() {
        let b = bundle();
        let key = rustls_pemfile::private_key(&mut b.key_pem.as_bytes())
            .unwrap()
            .expect("a private key");
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
        rustls::sign::CertifiedKey::from_der(certs(&b.cert_pem), key, &provider()).unwrap();
        // The CA key is not handed out.
        assert!(!b.key_pem.contains("CERTIFICATE"));
        assert!(b.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn ca_bundle_is_base64_of_the_ca_pem() {
        let b = bundle();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.ca_bundle())
            .unwrap();
        assert_eq!(decoded, b.ca_pem.as_bytes());
    }

    #[test]
    fn extra_sans_are_trimmed_deduplicated_and_may_be_wildcards_or_ipv6() {
        let b = generate(
            "svc",
            "ns",
            &[
                " svc.ns.svc ".into(),
                "*.example.com".into(),
                "::1".into(),
                "Upper.Example.COM".into(),
            ],
        )
        .unwrap();
        verify(&b, "svc.ns.svc").unwrap();
        verify(&b, "a.example.com").unwrap();
        verify(&b, "::1").unwrap();
        verify(&b, "upper.example.com").unwrap();
    }

    #[test]
    fn bad_extra_san_is_named() {
        for bad in [
            "bad_name!",
            "",
            "foo..bar",
            "-x.example.com",
            "x.example.com.",
            "a.*.example.com",
            "[::1]",
            "10.0.0.300",
        ] {
            match generate("svc", "ns", &[bad.to_string()]) {
                Err(CertError::Generate(m)) => {
                    assert!(m.contains(&format!("{bad:?}")), "{bad:?}: {m}")
                }
                other => panic!("{bad:?}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_service_or_namespace_is_named() {
        let err = generate("Bad_Svc", "ns", &[]).unwrap_err().to_string();
        assert!(err.contains("service") && err.contains("Bad_Svc"), "{err}");
        let err = generate("svc", "ns.x", &[]).unwrap_err().to_string();
        assert!(err.contains("namespace") && err.contains("ns.x"), "{err}");
    }

    #[test]
    fn long_names_still_generate() {
        let service = "s".repeat(63);
        let namespace = "n".repeat(63);
        let b = generate(&service, &namespace, &[]).unwrap();
        verify(&b, &format!("{service}.{namespace}.svc")).unwrap();
    }

    #[test]
    fn write_to_round_trips() {
        let b = bundle();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("certs");
        b.write_to(&dir).unwrap();
        let read = |name| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read(CA_CERT_FILE), b.ca_pem);
        assert_eq!(read(CERT_FILE), b.cert_pem);
        assert_eq!(read(KEY_FILE), b.key_pem);

        // Overwriting works, and leaves nothing of the old key behind.
        let again = bundle();
        again.write_to(&dir).unwrap();
        assert_eq!(read(KEY_FILE), again.key_pem);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |name| {
                std::fs::metadata(dir.join(name))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode(KEY_FILE), 0o600);
            std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
                .unwrap();
            b.write_to(&dir).unwrap();
            assert_eq!(mode(KEY_FILE), 0o600);
        }
    }

    #[test]
    fn write_errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let dir = file.join("certs");
        match bundle().write_to(&dir) {
            Err(e @ CertError::Write { .. }) => {
                assert!(e.to_string().contains(&dir.display().to_string()), "{e}")
            }
            other => panic!("expected a write error, got {other:?}"),
        }
    }
}
