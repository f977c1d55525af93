//! The CA: its certificate and key, and the certificates it issues: client
//! certificates for checked CSRs, server certificates for the broker's own
//! listeners. Every certificate it issues is an end entity (CA:FALSE) with a
//! random serial and one extended key usage.

use std::time::{Duration, SystemTime};

use base64::Engine;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::parse_x509_certificate;

use super::csr;
use super::error::{CsrError, PkiError};
use super::peer::sha256_hex;
use super::subject::Subject;
use super::validity::Window;

/// How long a generated CA lasts: ten years.
const CA_VALIDITY: Duration = Duration::from_secs(3652 * 24 * 60 * 60);

/// The Connector's certificate authority.
#[derive(Debug)]
pub struct Authority {
    /// Holds the key; its `Debug` leaves the key out.
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

/// A client certificate, as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    /// Lower-case hex of the SHA-256 of the DER: the certificate's id for
    /// revocation.
    pub sha256: String,
    pub not_after: SystemTime,
}

/// A server certificate and its (new) key, both PEM.
pub struct ServerIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Authority {
    /// A new CA: ECDSA P-256 key, CN = `common_name`, valid ten years, basic
    /// constraints CA with path length 0 (it signs end entities only), key usage
    /// keyCertSign and cRLSign.
    pub fn generate(common_name: &str) -> Result<Authority, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation_failed)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial().map_err(PkiError::Generate)?);
        Window::from_now(CA_VALIDITY)
            .map_err(PkiError::Generate)?
            .apply(&mut params);
        let cert = params.self_signed(&key).map_err(generation_failed)?;
        Authority::assemble(cert.der().clone(), key)
    }

    /// An existing CA: a PEM certificate that is a CA, and its PEM private key
    /// (PKCS#8, RSA or ECDSA).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        Authority::assemble(ca_certificate(cert_pem)?, ca_key(key_pem)?)
    }

    /// The CA from its parts, once the key is known to be the certificate's.
    pub(super) fn assemble(
        cert_der: CertificateDer<'static>,
        key: KeyPair,
    ) -> Result<Authority, PkiError> {
        let (_, cert) = parse_x509_certificate(&cert_der)
            .map_err(|error| PkiError::BadCertificate(error.to_string()))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(PkiError::KeyMismatch);
        }
        // The issuer name and key id are taken from the certificate as it is.
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|error| PkiError::BadCertificate(error.to_string()))?;
        Ok(Authority {
            issuer,
            cert_pem: certificate_pem(&cert_der),
            cert_der,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A client certificate for a CSR (PEM, or DER when not PEM) once it passes:
    /// its signature verifies, its subject is exactly `expected`, and its key is
    /// RSA 2048..=4096 bits or ECDSA P-256. The certificate has the CSR's subject
    /// and key and nothing else the CSR asked for: not a CA, key usage
    /// digitalSignature (and keyEncipherment for RSA), extended key usage
    /// clientAuth only, valid from a minute ago for `validity`, and one subject
    /// alternative name: the URI `holder`, naming whom it was issued to more
    /// precisely than a CN can (a CN is a name, which can be given again).
    pub fn sign_client(
        &self,
        csr: &[u8],
        expected: &Subject,
        validity: Duration,
        holder: &str,
    ) -> Result<Issued, CsrError> {
        let holder = Ia5String::try_from(holder)
            .map_err(|error| CsrError::Signing(format!("holder URI {holder:?}: {error}")))?;
        let request = csr::check(csr, expected)?;
        let mut usages = vec![KeyUsagePurpose::DigitalSignature];
        if request.key.is_rsa() {
            usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = request.subject;
        params.subject_alt_names = vec![SanType::URI(holder)];
        let not_after = end_entity(
            &mut params,
            usages,
            ExtendedKeyUsagePurpose::ClientAuth,
            validity,
        )
        .map_err(CsrError::Signing)?;
        let cert = params
            .signed_by(&request.key, &self.issuer)
            .map_err(|error| CsrError::Signing(error.to_string()))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            sha256: sha256_hex(cert.der()),
            cert_der: cert.der().clone(),
            not_after,
        })
    }

    /// A server certificate with a new ECDSA P-256 key for `hosts` (DNS names,
    /// or IP addresses, which become IP SANs), CN = the first host, extended key
    /// usage serverAuth, valid from a minute ago for `validity`.
    pub fn server_certificate(
        &self,
        hosts: &[String],
        validity: Duration,
    ) -> Result<ServerIdentity, PkiError> {
        let first = hosts.first().ok_or(PkiError::NoHosts)?;
        let mut params = CertificateParams::new(hosts.to_vec())
            .map_err(|error| PkiError::Generate(format!("hosts {hosts:?}: {error}")))?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
        end_entity(
            &mut params,
            vec![KeyUsagePurpose::DigitalSignature],
            ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        )
        .map_err(PkiError::Generate)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation_failed)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generation_failed)?;
        Ok(ServerIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What every end-entity certificate carries: CA:FALSE, `usages`, the one
/// `purpose`, the CA's key id, a random serial, and the window for `validity`
/// (whose end it returns).
fn end_entity(
    params: &mut CertificateParams,
    usages: Vec<KeyUsagePurpose>,
    purpose: ExtendedKeyUsagePurpose,
    validity: Duration,
) -> Result<SystemTime, String> {
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = usages;
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    let window = Window::from_now(validity)?;
    window.apply(params);
    Ok(window.not_after)
}

/// A serial no other certificate of this CA has (RFC 5280 §4.1.2.2): 16 random
/// bytes, the top bit cleared (positive) and the next set, so every serial is
/// 16 bytes long and none is zero.
fn random_serial() -> Result<SerialNumber, String> {
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|error| format!("no randomness for a serial: {error}"))?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&serial))
}

/// The first certificate in `cert_pem`, if it may act as a CA: basic
/// constraints CA:TRUE, and keyCertSign if it lists key usages.
pub(super) fn ca_certificate(cert_pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|error| {
        PkiError::BadCertificate(format!("no PEM certificate (BEGIN CERTIFICATE): {error}"))
    })?;
    let (_, cert) = parse_x509_certificate(&der)
        .map_err(|error| PkiError::BadCertificate(error.to_string()))?;
    if !cert.is_ca() {
        return Err(PkiError::BadCertificate(
            "it is not a CA (its basic constraints do not say CA:TRUE)".into(),
        ));
    }
    match cert.key_usage() {
        Ok(Some(usage)) if !usage.value.key_cert_sign() => Err(PkiError::BadCertificate(
            "its key usage does not allow signing certificates (keyCertSign)".into(),
        )),
        Err(error) => Err(PkiError::BadCertificate(format!("key usage: {error}"))),
        Ok(_) => Ok(der),
    }
}

/// The CA's key: PKCS#8, the one form ring reads.
pub(super) fn ca_key(key_pem: &str) -> Result<KeyPair, PkiError> {
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|error| PkiError::BadKey(format!("no PEM private key: {error}")))?;
    if !matches!(der, PrivateKeyDer::Pkcs8(_)) {
        return Err(PkiError::BadKey(
            "it must be PKCS#8 (BEGIN PRIVATE KEY); `openssl pkcs8 -topk8 -nocrypt` converts it"
                .into(),
        ));
    }
    KeyPair::try_from(&der).map_err(|error| PkiError::BadKey(error.to_string()))
}

/// PEM for a certificate rcgen did not make (one read from a file), as rcgen
/// writes its own: base64 in lines of 64.
fn certificate_pem(der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn generation_failed(error: rcgen::Error) -> PkiError {
    PkiError::Generate(error.to_string())
}
