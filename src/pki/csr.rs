//! Reading and checking a client's CSR. What passes is all the CA takes from
//! it: the subject, as written, and the public key. Requested extensions (SANs,
//! CA flags, anything) are never looked at, so they can never be copied.

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    DistinguishedName, DnType, DnValue, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, PublicKeyData,
    SignatureAlgorithm,
};
use rustls::pki_types::CertificateSigningRequestDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::asn1_rs::Tag;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::error::CsrError;
use super::subject::{Subject, attributes_of, render};

/// RSA modulus sizes a client key may have (Kyma's connector asks for 4096).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A CSR that passed: what the certificate will say.
pub(super) struct CheckedRequest {
    pub(super) subject: DistinguishedName,
    pub(super) key: RequestedKey,
}

/// The CSR's public key, as the certificate will carry it.
pub(super) struct RequestedKey {
    kind: KeyKind,
    /// The subjectPublicKey bits of the CSR, unchanged.
    bits: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcdsaP256,
}

impl RequestedKey {
    pub(super) fn is_rsa(&self) -> bool {
        self.kind == KeyKind::Rsa
    }
}

impl PublicKeyData for RequestedKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// rcgen writes only this algorithm's key identifier (rsaEncryption, or
    /// id-ecPublicKey on P-256) into the certificate; its hash plays no part.
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self.kind {
            KeyKind::Rsa => &PKCS_RSA_SHA256,
            KeyKind::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// Reads `csr` (PEM, else DER) and checks it. The key comes first: ring will
/// not verify a signature by a key too small, and "not RSA 1024" tells the
/// client more than "does not verify". Then the signature, then the subject.
pub(super) fn check(csr: &[u8], expected: &Subject) -> Result<CheckedRequest, CsrError> {
    let der = der_of(csr)?;
    let (rest, request) = X509CertificationRequest::from_der(&der)
        .map_err(|error| CsrError::Unreadable(error.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::Unreadable(format!(
            "{} bytes follow the request",
            rest.len()
        )));
    }
    let info = &request.certification_request_info;
    let kind = key_kind(&info.subject_pki)?;
    // Unsupported signature algorithms fail here too: nothing the CA can trust.
    request
        .verify_signature()
        .map_err(|_| CsrError::BadSignature)?;
    let attributes = attributes_of(&info.subject);
    if !expected.is_exactly(&attributes) {
        return Err(CsrError::WrongSubject {
            expected: expected.to_string(),
            got: render(&attributes),
        });
    }
    Ok(CheckedRequest {
        subject: distinguished_name(&info.subject)?,
        key: RequestedKey {
            kind,
            bits: info.subject_pki.subject_public_key.data.to_vec(),
        },
    })
}

fn der_of(csr: &[u8]) -> Result<CertificateSigningRequestDer<'_>, CsrError> {
    if !csr.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(CertificateSigningRequestDer::from(csr));
    }
    CertificateSigningRequestDer::from_pem_slice(csr)
        .map_err(|error| CsrError::Unreadable(format!("PEM: {error}")))
}

fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyKind, CsrError> {
    let algorithm = &spki.algorithm.algorithm;
    let found = if *algorithm == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = modulus_bits(rsa.modulus);
                if RSA_BITS.contains(&bits) {
                    return Ok(KeyKind::Rsa);
                }
                format!("RSA {bits}")
            }
            _ => "an unreadable RSA key".to_string(),
        }
    } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        match spki.algorithm.parameters.as_ref().map(|p| p.as_oid()) {
            Some(Ok(curve)) if curve == OID_EC_P256 => return Ok(KeyKind::EcdsaP256),
            Some(Ok(curve)) => format!("ECDSA {}", short_name(&curve)),
            _ => "ECDSA without a named curve".to_string(),
        }
    } else {
        short_name(algorithm)
    };
    Err(CsrError::WrongKey(format!(
        "the key must be RSA 2048 (or up to 4096) bits or ECDSA P-256, not {found}"
    )))
}

/// The size of an RSA modulus: its bits from the highest one set (DER pads a
/// positive integer with a leading zero byte, which does not count).
fn modulus_bits(modulus: &[u8]) -> usize {
    let start = modulus.iter().position(|byte| *byte != 0);
    match start {
        Some(start) => {
            let leading = modulus[start].leading_zeros() as usize;
            (modulus.len() - start) * 8 - leading
        }
        None => 0,
    }
}

fn short_name(oid: &x509_parser::asn1_rs::Oid<'_>) -> String {
    oid2sn(oid, oid_registry()).map_or_else(|_| oid.to_id_string(), str::to_string)
}

/// The CSR's subject for the certificate, attribute by attribute as written
/// (order and string types), so the certificate names the client byte for byte
/// as its CSR did.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, CsrError> {
    let unreadable = |what: &str| CsrError::Unreadable(format!("the subject's {what}"));
    let mut distinguished = DistinguishedName::new();
    for attribute in name.iter_attributes() {
        let oid: Vec<u64> = attribute
            .attr_type()
            .iter()
            .ok_or_else(|| unreadable("attribute type"))?
            .collect();
        let text = attribute
            .as_str()
            .map_err(|_| unreadable("attribute value, which is not text"))?;
        let value = match attribute.attr_value().header.tag() {
            Tag::PrintableString => DnValue::PrintableString(
                PrintableString::try_from(text).map_err(|_| unreadable("PrintableString"))?,
            ),
            Tag::Ia5String => {
                DnValue::Ia5String(Ia5String::try_from(text).map_err(|_| unreadable("IA5String"))?)
            }
            _ => DnValue::Utf8String(text.to_string()),
        };
        distinguished.push(DnType::from_oid(&oid), value);
    }
    Ok(distinguished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_size_counts_from_the_highest_bit_set() {
        let cases: [(&[u8], usize); 5] = [
            (&[], 0),
            (&[0x00, 0x00], 0),
            (&[0x00, 0x80, 0x01], 16),
            (&[0x7f, 0xff], 15),
            (&[0x01], 1),
        ];
        for (modulus, bits) in cases {
            assert_eq!(modulus_bits(modulus), bits, "{modulus:02x?}");
        }
        let mut rsa_2048 = vec![0x00, 0xc1];
        rsa_2048.resize(257, 0x5a);
        assert_eq!(modulus_bits(&rsa_2048), 2048);
    }
}
