//! Certificates read back: a peer's identity, and the server certificates the
//! CA makes for the broker's listeners.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::KeyPair;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

use super::fixtures::{DAY, HOLDER, csr_for, ecdsa_key, subject};
use crate::pki::{Authority, PkiError, identity_of};

#[test]
fn a_peer_is_known_by_its_cn_and_fingerprint() {
    let ca = Authority::generate("Test CA").expect("CA");
    let subject = subject("orders");
    let issued = ca
        .sign_client(
            csr_for(&subject, &ecdsa_key()).as_bytes(),
            &subject,
            DAY,
            HOLDER,
        )
        .expect("issued");
    let identity = identity_of(&issued.cert_der).expect("identity");
    assert_eq!(identity.common_name, "orders");
    assert_eq!(identity.sha256, issued.sha256);
    assert_eq!(
        identity.subject,
        "OU=Test,O=TestOrg,L=Waldorf,ST=Waldorf,C=DE,CN=orders"
    );
    assert_eq!(identity.not_after, issued.not_after);
    assert_eq!(identity.holder.as_deref(), Some(HOLDER));
}

#[test]
fn what_is_not_a_certificate_has_no_identity() {
    for input in [&b""[..], b"garbage"] {
        let error = identity_of(input).expect_err("not a certificate");
        assert!(matches!(error, PkiError::BadPeer(_)), "{error}");
    }
}

#[test]
fn a_server_certificate_names_its_hosts() {
    let ca = Authority::generate("Test CA").expect("CA");
    let hosts = [
        "broker.example".to_string(),
        "10.0.0.1".into(),
        "::1".into(),
    ];
    let server = ca
        .server_certificate(&hosts, DAY)
        .expect("server certificate");
    let der = CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).expect("PEM");
    let (_, cert) = parse_x509_certificate(&der).expect("certificate");

    assert_eq!(cert.subject().to_string(), "CN=broker.example");
    let names = &cert
        .subject_alternative_name()
        .expect("one")
        .expect("present")
        .value
        .general_names;
    let v4: IpAddr = "10.0.0.1".parse().expect("v4");
    let v6: IpAddr = "::1".parse().expect("v6");
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&GeneralName::DNSName("broker.example")));
    assert!(names.contains(&GeneralName::IPAddress(&[10, 0, 0, 1])));
    assert!(names.iter().any(|name| matches!(
        name,
        GeneralName::IPAddress(bytes) if *bytes == ::std::net::Ipv6Addr::LOCALHOST.octets()
    )));
    let purposes = cert
        .extended_key_usage()
        .expect("one")
        .expect("present")
        .value;
    assert!(purposes.server_auth && !purposes.client_auth);
    assert!(!cert.is_ca());

    let key = KeyPair::from_pem(&server.key_pem).expect("server key");
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );

    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("CA as root");
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier");
    for name in [
        ServerName::try_from("broker.example").expect("DNS name"),
        ServerName::from(v4),
        ServerName::from(v6),
    ] {
        verifier
            .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
            .unwrap_or_else(|error| panic!("{name:?}: {error}"));
    }
}

#[test]
fn a_server_certificate_needs_a_host() {
    let ca = Authority::generate("Test CA").expect("CA");
    let error = ca.server_certificate(&[], DAY).err().expect("no hosts");
    assert!(matches!(error, PkiError::NoHosts), "{error}");
}
