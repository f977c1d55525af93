//! What the CA tests share: a Kyma-like subject, CSRs made with rcgen (or by
//! openssl, in testdata/), and x509-parser's reading of a certificate.

use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use rustls::pki_types::CertificateSigningRequestDer;
use rustls::pki_types::pem::PemObject;

use crate::pki::Subject;

/// An RSA-2048 PKCS#8 key (`openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:2048`), kept because ring cannot generate RSA keys.
pub(super) const RSA_2048_KEY: &str = include_str!("testdata/rsa2048.key");

/// A CSR for CN=weak-app with an RSA-1024 key, made by `openssl req`: ring
/// refuses to load a key that small, so rcgen cannot make one.
pub(super) const RSA_1024_CSR: &str = include_str!("testdata/rsa1024.csr");

/// A CSR for CN=openssl-app made by `openssl req` with [`RSA_2048_KEY`]: UTF8String
/// attributes and a PrintableString country, as most clients write them.
pub(super) const OPENSSL_CSR: &str = include_str!("testdata/rsa2048.csr");

/// Whom the test certificates are issued to.
pub(super) const HOLDER: &str = "urn:meshbroker:application:0b2e6f1c-test";

pub(super) const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Kyma's test subject for `application`.
pub(super) fn subject(application: &str) -> Subject {
    Subject {
        common_name: application.into(),
        organization: Some("TestOrg".into()),
        organizational_unit: Some("Test".into()),
        locality: Some("Waldorf".into()),
        province: Some("Waldorf".into()),
        country: Some("DE".into()),
    }
}

pub(super) fn ecdsa_key() -> KeyPair {
    KeyPair::generate().expect("P-256 key")
}

pub(super) fn rsa_key() -> KeyPair {
    KeyPair::from_pem_and_sign_algo(RSA_2048_KEY, &PKCS_RSA_SHA256).expect("RSA test key")
}

/// The distinguished name a client would write for `subject`, in Kyma's order.
pub(super) fn name_of(subject: &Subject) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    let parts = [
        (DnType::OrganizationalUnitName, &subject.organizational_unit),
        (DnType::OrganizationName, &subject.organization),
        (DnType::LocalityName, &subject.locality),
        (DnType::StateOrProvinceName, &subject.province),
        (DnType::CountryName, &subject.country),
    ];
    for (kind, value) in parts {
        if let Some(value) = value {
            name.push(kind, value.as_str());
        }
    }
    name.push(DnType::CommonName, subject.common_name.as_str());
    name
}

/// A PEM CSR for `subject`, signed by `key`, asking for nothing else.
pub(super) fn csr_for(subject: &Subject, key: &KeyPair) -> String {
    let mut params = CertificateParams::default();
    params.distinguished_name = name_of(subject);
    csr_with(&params, key)
}

pub(super) fn csr_with(params: &CertificateParams, key: &KeyPair) -> String {
    params
        .serialize_request(key)
        .expect("CSR")
        .pem()
        .expect("CSR PEM")
}

pub(super) fn der_of(csr_pem: &str) -> Vec<u8> {
    CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .expect("CSR PEM")
        .to_vec()
}
