//! What a peer's certificate says, once rustls has verified it: the
//! Application (its CN), its fingerprint (the id revocations use) and when it
//! expires. Nothing here verifies anything.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

use super::error::PkiError;
use super::subject::{attributes_of, render};
use crate::ids::hex;

/// What a verified peer certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub common_name: String,
    /// Lower-case hex of the SHA-256 of the certificate's DER.
    pub sha256: String,
    /// The whole subject, in [`Subject`](super::Subject)'s form.
    pub subject: String,
    pub not_after: SystemTime,
    /// The first URI among its subject alternative names: whom it was issued
    /// to (see `Authority::sign_client`).
    pub holder: Option<String>,
}

/// Reads a DER certificate; one without a CN is refused, for the CN is who
/// the peer is.
pub fn identity_of(der: &[u8]) -> Result<PeerIdentity, PkiError> {
    let (rest, cert) =
        parse_x509_certificate(der).map_err(|error| PkiError::BadPeer(error.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::BadPeer(format!(
            "{} bytes follow the certificate",
            rest.len()
        )));
    }
    let attributes = attributes_of(cert.subject());
    let common_name = attributes
        .iter()
        .find(|attribute| attribute.is_common_name())
        .ok_or_else(|| PkiError::BadPeer("its subject has no CN".into()))?
        .value()
        .to_string();
    let not_after = cert.validity().not_after.timestamp();
    let not_after = match u64::try_from(not_after) {
        Ok(seconds) => UNIX_EPOCH + Duration::from_secs(seconds),
        // Expired before 1970: as good as expired at 1970.
        Err(_) => UNIX_EPOCH,
    };
    let holder = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|names| {
            names
                .value
                .general_names
                .iter()
                .find_map(|name| match name {
                    GeneralName::URI(uri) => Some(uri.to_string()),
                    _ => None,
                })
        });
    Ok(PeerIdentity {
        common_name,
        sha256: sha256_hex(der),
        subject: render(&attributes),
        not_after,
        holder,
    })
}

/// Lower-case hex of the SHA-256 of `der`: a certificate's fingerprint.
pub fn sha256_hex(der: &[u8]) -> String {
    hex(&Sha256::digest(der))
}
