//! The Application Connector's certificate authority (Kyma-compatible): it keeps
//! the CA's certificate and key, checks a client's CSR (signature, exact subject,
//! key type) and issues a client certificate for it, and reads what a peer
//! certificate says. It never copies what a CSR asks for beyond its subject and
//! public key, and it does not verify peers itself: rustls does, with
//! [`Authority::cert_der`] as the root.

mod authority;
mod csr;
mod error;
mod peer;
mod store;
mod subject;
#[cfg(test)]
mod tests;
mod validity;

pub use authority::{Authority, Issued, ServerIdentity};
pub use error::{CsrError, PkiError};
pub use peer::{PeerIdentity, identity_of, sha256_hex};
pub use subject::Subject;
