//! The CSRs the CA refuses, and the reason each is given.

use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P384_SHA384};

use super::fixtures::{
    DAY, HOLDER, RSA_1024_CSR, csr_for, csr_with, der_of, ecdsa_key, name_of, subject,
};
use crate::pki::{Authority, CsrError, Subject};

fn refusal(csr: &[u8], expected: &Subject) -> CsrError {
    let ca = Authority::generate("Test CA").expect("CA");
    match ca.sign_client(csr, expected, DAY, HOLDER) {
        Ok(issued) => panic!("issued {}", issued.sha256),
        Err(error) => error,
    }
}

#[test]
fn a_subject_other_than_the_expected_one_is_refused() {
    let expected = subject("app");
    let with_email = {
        let mut name = name_of(&expected);
        name.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "a@b.c",
        );
        name
    };
    let cases = [
        (
            "another CN",
            name_of(&subject("other")),
            "OU=Test,O=TestOrg,L=Waldorf,ST=Waldorf,C=DE,CN=other",
        ),
        (
            "an attribute missing",
            name_of(&Subject {
                locality: None,
                ..expected.clone()
            }),
            "OU=Test,O=TestOrg,ST=Waldorf,C=DE,CN=app",
        ),
        (
            "an extra attribute",
            with_email,
            "OU=Test,O=TestOrg,L=Waldorf,ST=Waldorf,C=DE,CN=app,Email=a@b.c",
        ),
    ];
    for (case, name, got) in cases {
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        let csr = csr_with(&params, &ecdsa_key());
        assert_eq!(
            refusal(csr.as_bytes(), &expected),
            CsrError::WrongSubject {
                expected: "OU=Test,O=TestOrg,L=Waldorf,ST=Waldorf,C=DE,CN=app".into(),
                got: got.into(),
            },
            "{case}"
        );
    }
}

#[test]
fn a_small_rsa_key_is_refused_by_its_size() {
    let error = refusal(RSA_1024_CSR.as_bytes(), &subject("weak-app"));
    assert_eq!(
        error,
        CsrError::WrongKey(
            "the key must be RSA 2048 (or up to 4096) bits or ECDSA P-256, not RSA 1024".into()
        )
    );
}

#[test]
fn an_ecdsa_key_on_another_curve_is_refused() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("P-384 key");
    let expected = subject("app");
    let error = refusal(csr_for(&expected, &key).as_bytes(), &expected);
    assert_eq!(
        error,
        CsrError::WrongKey(
            "the key must be RSA 2048 (or up to 4096) bits or ECDSA P-256, not ECDSA secp384r1"
                .into()
        )
    );
}

#[test]
fn a_tampered_csr_fails_its_signature() {
    let expected = subject("app");
    let csr = der_of(&csr_for(&expected, &ecdsa_key()));

    let mut signature_flipped = csr.clone();
    let last = signature_flipped.len() - 1;
    signature_flipped[last] ^= 0x01;

    // Another CN the signature does not cover: refused for the signature, before
    // the subject is looked at.
    let mut subject_changed = csr.clone();
    let at = subject_changed
        .windows(3)
        .position(|window| window == b"app")
        .expect("the CN in the DER");
    subject_changed[at + 2] = b'q';

    for (case, tampered) in [
        ("signature", signature_flipped),
        ("subject", subject_changed),
    ] {
        assert_eq!(
            refusal(&tampered, &expected),
            CsrError::BadSignature,
            "{case}"
        );
    }
}

#[test]
fn what_is_not_a_csr_is_unreadable() {
    let expected = subject("app");
    let valid = der_of(&csr_for(&expected, &ecdsa_key()));
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"more");
    let cases: [(&str, Vec<u8>); 6] = [
        ("nothing", Vec::new()),
        ("text", b"not a CSR at all".to_vec()),
        ("half a CSR", valid[..valid.len() / 2].to_vec()),
        ("bytes after the CSR", trailing),
        (
            "PEM of no CSR",
            b"-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8=\n-----END CERTIFICATE REQUEST-----\n"
                .to_vec(),
        ),
        (
            "PEM of another kind",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n".to_vec(),
        ),
    ];
    for (case, input) in cases {
        let error = refusal(&input, &expected);
        assert!(
            matches!(error, CsrError::Unreadable(_)),
            "{case}: {error:?}"
        );
    }
}
