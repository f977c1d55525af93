//! Who may call: the admin bearer token, namespace-scoped AccessTokens (kept in a
//! cache fed by a watch), and the OSB basic-auth credentials. Generated secrets are
//! written once to the data directory and only their digests are compared.

mod caller;
mod credentials;
mod secrets;
mod token_cache;

pub use caller::{AuthError, Authenticator, Caller};
pub use credentials::{CredentialFiles, Credentials};
pub use secrets::{generate_token, sha256_hex};
pub use token_cache::{NamespaceTokens, TokenScope};
