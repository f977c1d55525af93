//! What an issued client certificate says: the CSR's subject and key, the CA as
//! issuer, clientAuth only, not a CA, and a signature the CA's key verifies.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
use rustls::RootCertStore;
use rustls::pki_types::UnixTime;
use rustls::server::WebPkiClientVerifier;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;
use x509_parser::prelude::FromDer;

use super::fixtures::{
    DAY, HOLDER, OPENSSL_CSR, csr_for, csr_with, der_of, ecdsa_key, name_of, rsa_key, subject,
};
use crate::pki::{Authority, Issued, sha256_hex};

/// Checks everything an issued client certificate must say, against its CA and CSR.
fn assert_client_certificate(ca: &Authority, issued: &Issued, csr_der: &[u8], rsa: bool) {
    let (_, cert) = parse_x509_certificate(&issued.cert_der).expect("issued certificate");
    let (_, ca_cert) = parse_x509_certificate(ca.cert_der()).expect("CA certificate");
    let (_, csr) = X509CertificationRequest::from_der(csr_der).expect("CSR");
    let request = &csr.certification_request_info;

    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
    assert_eq!(cert.subject().as_raw(), request.subject.as_raw());
    assert_eq!(cert.public_key().raw, request.subject_pki.raw);
    cert.verify_signature(Some(ca_cert.public_key()))
        .expect("signed by the CA's key");

    let constraints = cert.basic_constraints().expect("one").expect("present");
    assert!(!constraints.value.ca, "not a CA");
    let purposes = cert
        .extended_key_usage()
        .expect("one")
        .expect("present")
        .value;
    assert!(purposes.client_auth);
    assert!(
        !purposes.any
            && !purposes.server_auth
            && !purposes.code_signing
            && !purposes.email_protection
            && !purposes.time_stamping
            && !purposes.ocsp_signing
            && purposes.other.is_empty(),
        "clientAuth only: {purposes:?}"
    );
    let usage = cert.key_usage().expect("one").expect("present").value;
    assert!(usage.digital_signature());
    assert_eq!(usage.key_encipherment(), rsa);
    assert!(!usage.key_cert_sign() && !usage.crl_sign());
    let names = cert
        .subject_alternative_name()
        .expect("one")
        .expect("present");
    assert_eq!(
        names.value.general_names,
        vec![GeneralName::URI(HOLDER)],
        "the holder's URI and nothing the CSR asked for"
    );

    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let starts = cert.validity().not_before.timestamp();
    let started_ago = i64::try_from(now.as_secs()).expect("seconds") - starts;
    assert!(
        (60..=65).contains(&started_ago),
        "from a minute ago: {started_ago}s"
    );
    let ends = UNIX_EPOCH
        + std::time::Duration::from_secs(
            u64::try_from(cert.validity().not_after.timestamp()).expect("after 1970"),
        );
    assert_eq!(ends, issued.not_after);
    let lasts = issued
        .not_after
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(lasts <= DAY && lasts > DAY - std::time::Duration::from_secs(5));

    assert_eq!(issued.sha256, sha256_hex(&issued.cert_der));
    assert_eq!(issued.sha256.len(), 64);
    assert_eq!(
        der_of_certificate(&issued.cert_pem),
        issued.cert_der.to_vec()
    );
}

fn der_of_certificate(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("certificate PEM")
        .to_vec()
}

#[test]
fn an_ecdsa_csr_gets_a_client_certificate() {
    let ca = Authority::generate("Test CA").expect("CA");
    let subject = subject("app");
    let csr = csr_for(&subject, &ecdsa_key());
    let issued = ca
        .sign_client(csr.as_bytes(), &subject, DAY, HOLDER)
        .expect("issued");
    assert_client_certificate(&ca, &issued, &der_of(&csr), false);
}

#[test]
fn an_rsa_csr_in_der_gets_a_client_certificate_with_key_encipherment() {
    let ca = Authority::generate("Test CA").expect("CA");
    let subject = subject("app");
    let csr = der_of(&csr_for(&subject, &rsa_key()));
    let issued = ca.sign_client(&csr, &subject, DAY, HOLDER).expect("issued");
    assert_client_certificate(&ca, &issued, &csr, true);
}

#[test]
fn an_openssl_csr_keeps_its_subject_byte_for_byte() {
    let ca = Authority::generate("Test CA").expect("CA");
    let issued = ca
        .sign_client(OPENSSL_CSR.as_bytes(), &subject("openssl-app"), DAY, HOLDER)
        .expect("issued");
    // The subject check in the helper compares the raw bytes: string types and
    // order as openssl wrote them.
    assert_client_certificate(&ca, &issued, &der_of(OPENSSL_CSR), true);
}

#[test]
fn what_else_the_csr_asks_for_is_not_copied() {
    let ca = Authority::generate("Test CA").expect("CA");
    let subject = subject("greedy");
    let mut params =
        CertificateParams::new(vec!["evil.example".into(), "10.0.0.1".into()]).expect("SANs");
    params.distinguished_name = name_of(&subject);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let csr = csr_with(&params, &ecdsa_key());
    let csr_der = der_of(&csr);
    let (_, request) = X509CertificationRequest::from_der(&csr_der).expect("CSR");
    let asked = request.requested_extensions().expect("extensions").count();
    assert_eq!(
        asked, 4,
        "SANs, key usage, extended key usage, basic constraints"
    );
    let issued = ca
        .sign_client(csr.as_bytes(), &subject, DAY, HOLDER)
        .expect("issued");
    // Only the holder's SAN, CA:FALSE, clientAuth only, no keyCertSign: all checked here.
    assert_client_certificate(&ca, &issued, &csr_der, false);
}

#[test]
fn serials_are_random_positive_and_sixteen_bytes() {
    let ca = Authority::generate("Test CA").expect("CA");
    let subject = subject("app");
    let csr = csr_for(&subject, &ecdsa_key());
    let serials: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            let issued = ca
                .sign_client(csr.as_bytes(), &subject, DAY, HOLDER)
                .expect("issued");
            let (_, cert) = parse_x509_certificate(&issued.cert_der).expect("certificate");
            cert.raw_serial().to_vec()
        })
        .collect();
    assert_ne!(serials[0], serials[1]);
    for serial in serials {
        assert_eq!(serial.len(), 16, "{serial:02x?}");
        assert_eq!(serial[0] & 0xc0, 0x40, "positive, top byte never zero");
    }
}

#[test]
fn rustls_accepts_an_issued_certificate_as_a_client() {
    let ca = Authority::generate("Test CA").expect("CA");
    let subject = subject("app");
    let issued = ca
        .sign_client(
            csr_for(&subject, &ecdsa_key()).as_bytes(),
            &subject,
            DAY,
            HOLDER,
        )
        .expect("issued");
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("CA as root");
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier");
    verifier
        .verify_client_cert(&issued.cert_der, &[], UnixTime::now())
        .expect("a valid client certificate");
}

#[test]
fn an_rsa_ca_read_from_pem_issues_too() {
    let key = rsa_key();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("RSA CA");
    let ca = Authority::from_pem(&cert.pem(), &key.serialize_pem()).expect("CA from PEM");
    let subject = subject("app");
    let csr = csr_for(&subject, &ecdsa_key());
    let issued = ca
        .sign_client(csr.as_bytes(), &subject, DAY, HOLDER)
        .expect("issued");
    assert_client_certificate(&ca, &issued, &der_of(&csr), false);
}

#[test]
fn a_ca_survives_its_own_pem() {
    let ca = Authority::generate("Test CA").expect("CA");
    let again = Authority::from_pem(ca.cert_pem(), &ca.key_pem()).expect("reread");
    assert_eq!(again.cert_der(), ca.cert_der());
    assert_eq!(again.cert_pem(), ca.cert_pem());
    let (_, cert) = parse_x509_certificate(ca.cert_der()).expect("CA certificate");
    assert_eq!(cert.subject().to_string(), "CN=Test CA");
    assert_eq!(cert.issuer(), cert.subject(), "self-signed");
    let constraints = cert
        .basic_constraints()
        .expect("one")
        .expect("present")
        .value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    let usage = cert.key_usage().expect("one").expect("present").value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    let years = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(years >= 10 * 365 * 24 * 60 * 60, "ten years: {years}s");
}
