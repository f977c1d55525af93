//! The CA from PEM and from its directory: what is refused, what is made, and
//! that what was made is what the next start reads.

use std::os::unix::fs::PermissionsExt;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyUsagePurpose};

use super::fixtures::{RSA_2048_KEY, ecdsa_key};
use crate::pki::{Authority, PkiError};

#[test]
fn a_certificate_that_is_not_a_ca_is_refused() {
    let key = ecdsa_key();
    let leaf = CertificateParams::default()
        .self_signed(&key)
        .expect("leaf");
    let error = Authority::from_pem(&leaf.pem(), &key.serialize_pem()).expect_err("not a CA");
    assert!(
        matches!(&error, PkiError::BadCertificate(why) if why.contains("not a CA")),
        "{error}"
    );

    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let no_cert_sign = params.self_signed(&key).expect("CA without keyCertSign");
    let error = Authority::from_pem(&no_cert_sign.pem(), &key.serialize_pem())
        .expect_err("may not sign certificates");
    assert!(
        matches!(&error, PkiError::BadCertificate(why) if why.contains("keyCertSign")),
        "{error}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let ca = Authority::generate("Test CA").expect("CA");
    let error = Authority::from_pem(ca.cert_pem(), RSA_2048_KEY).expect_err("another key");
    assert!(matches!(error, PkiError::KeyMismatch), "{error}");
}

#[test]
fn the_ca_is_made_once_with_a_private_key_and_read_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_dir = dir.path().join("connector");
    let made = Authority::load_or_create(&ca_dir).expect("made");
    let key_mode = std::fs::metadata(ca_dir.join("connector-ca.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let written = std::fs::read_to_string(ca_dir.join("connector-ca.crt")).expect("cert file");
    assert_eq!(written, made.cert_pem());

    let read = Authority::load_or_create(&ca_dir).expect("read");
    assert_eq!(read.cert_der(), made.cert_der());
    assert_eq!(read.key_pem(), made.key_pem());
    let mut names: Vec<String> = std::fs::read_dir(&ca_dir)
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["connector-ca.crt", "connector-ca.key"],
        "no temporary files left"
    );
}

#[test]
fn a_corrupt_or_unreadable_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    Authority::load_or_create(dir.path()).expect("made");
    let key = dir.path().join("connector-ca.key");

    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n",
    )
    .expect("corrupt the key");
    let error = Authority::load_or_create(dir.path()).expect_err("corrupt key");
    assert!(
        matches!(&error, PkiError::BadFile { path, .. } if *path == key),
        "{error}"
    );
    assert!(
        error.to_string().contains(&key.display().to_string()),
        "{error}"
    );

    // A directory where the key should be: there, but not readable as a file.
    std::fs::remove_file(&key).expect("remove the key");
    std::fs::create_dir(&key).expect("a directory instead");
    let error = Authority::load_or_create(dir.path()).expect_err("unreadable key");
    assert!(
        matches!(&error, PkiError::Read { path, .. } if *path == key),
        "{error}"
    );
}

#[test]
fn a_lone_key_left_by_a_crash_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("connector-ca.key"), "half a key").expect("leftover");
    let made = Authority::load_or_create(dir.path()).expect("made anew");
    let read = Authority::load_or_create(dir.path()).expect("read");
    assert_eq!(read.cert_der(), made.cert_der());
}
