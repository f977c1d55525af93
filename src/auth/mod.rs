//! Who may call: the admin bearer token, namespace-scoped AccessTokens (kept in a
//! cache fed by a watch), client certificates meshbroker's Connector issued (less
//! the revoked ones, another such cache), and the OSB basic-auth credentials.
//! Generated secrets are written once to the data directory and only their
//! digests are compared.

mod caller;
mod credentials;
mod revocations;
mod secrets;
mod standing;
mod store_index;
mod token_cache;

pub use caller::{AuthError, Authenticator, Caller, ClientCertificate, application_holder};
pub use credentials::{CredentialFiles, Credentials};
pub use revocations::{Revocations, follow_revocations};
pub use secrets::{generate_token, sha256_hex};
pub use standing::until_revoked;
pub use token_cache::{NamespaceTokens, TokenScope, follow_tokens};
