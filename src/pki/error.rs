//! The two ways the CA fails: setting itself up or minting a server certificate
//! ([`PkiError`]), and refusing or failing a client's CSR ([`CsrError`], whose
//! messages are fit to send back to the client).

use std::path::PathBuf;

/// The CA could not be set up, or could not mint or read a certificate.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("the CA certificate is unusable: {0}")]
    BadCertificate(String),
    #[error("the CA key is unusable: {0}")]
    BadKey(String),
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    /// A CA file that is there but does not hold what it should.
    #[error("{}: {problem}", path.display())]
    BadFile { path: PathBuf, problem: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating a certificate failed: {0}")]
    Generate(String),
    #[error("a server certificate needs at least one host name or IP address")]
    NoHosts,
    #[error("the peer certificate is not readable: {0}")]
    BadPeer(String),
}

/// Why a client's CSR was refused (or, last, why signing it failed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("the CSR is not a PEM or DER PKCS#10 request: {0}")]
    Unreadable(String),
    #[error("the CSR's signature does not verify")]
    BadSignature,
    #[error("the CSR's subject must be {expected:?}, not {got:?}")]
    WrongSubject { expected: String, got: String },
    #[error("{0}")]
    WrongKey(String),
    #[error("signing failed: {0}")]
    Signing(String),
}
