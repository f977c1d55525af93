//! Resolving a request's credentials to a `Caller`.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;

use super::secrets::{same_digest, sha256_hex};
use super::{Credentials, NamespaceTokens, Revocations};
use crate::pki::PeerIdentity;
use crate::store::{NoSlot, WatchSlot, WatchSlots};

/// The client certificate a TLS connection presented, already verified at the
/// handshake: issued by meshbroker's CA and within its validity. Whether it is
/// revoked is asked per request (a revocation reaches open connections too).
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<PeerIdentity>);

/// The holder URI of the certificates issued to the Application with this uid:
/// a CN names an Application, and names are given again; a uid is not.
pub fn application_holder(uid: &str) -> String {
    format!("{HOLDER_PREFIX}{uid}")
}

const HOLDER_PREFIX: &str = "urn:meshbroker:application:";

impl ClientCertificate {
    /// Whether it was issued to the Application with this uid (and not to an
    /// earlier one of the same name).
    pub fn issued_to(&self, uid: &str) -> bool {
        // Compared in place: this runs for every request a certificate sends.
        let holder = self.0.holder.as_deref();
        holder.and_then(|h| h.strip_prefix(HOLDER_PREFIX)) == Some(uid)
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// May read and write objects in this namespace only.
    Namespace(String),
    /// An Application's credential: may only send that Application's events.
    Application(String),
}

impl Caller {
    /// A place for one more long-lived stream of this caller's (a watch, the
    /// console's stream, a Broker's tail): the admin's do not count against
    /// the namespace tokens' total, so tenants filling it do not lock the
    /// admin out.
    pub fn take_watch_slot(&self, slots: &WatchSlots) -> Result<WatchSlot, NoSlot> {
        slots.take(&self.watch_key(), *self != Caller::Admin)
    }

    /// Whose open watches count together (`store::WatchSlots`): the admin's,
    /// or all of one namespace's tokens, or an Application's credential.
    fn watch_key(&self) -> String {
        match self {
            Caller::Admin => "admin".to_string(),
            Caller::Namespace(namespace) => format!("namespace/{namespace}"),
            Caller::Application(application) => format!("application/{application}"),
        }
    }

    /// An Application's ingress: its own credential (or the admin token).
    pub fn may_send_for(&self, application: &str) -> Result<(), AuthError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Application(own) if own == application => Ok(()),
            Caller::Application(own) => Err(AuthError::Forbidden(format!(
                "the credential of Application {own:?} may not send events of Application {application:?}"
            ))),
            Caller::Namespace(namespace) => Err(AuthError::Forbidden(format!(
                "a token of namespace {namespace:?} may not send Application events; use the Application's credential"
            ))),
        }
    }

    /// A Broker's or Channel's ingress: a token of its namespace (or the admin token).
    pub fn may_send_into(&self, namespace: &str) -> Result<(), AuthError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Namespace(own) if own == namespace => Ok(()),
            Caller::Namespace(own) => Err(AuthError::Forbidden(format!(
                "a token of namespace {own:?} may not send to namespace {namespace:?}"
            ))),
            Caller::Application(application) => Err(AuthError::Forbidden(format!(
                "the credential of Application {application:?} only opens its own ingress"
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("credentials are required: send Authorization: Bearer <token>")]
    MissingBearer,
    #[error(
        "credentials are required: send HTTP basic auth or Authorization: Bearer <admin token>"
    )]
    MissingBasic,
    #[error("the credentials are not valid")]
    Rejected,
    #[error("Authorization is given more than once: send one")]
    TwoAuthorizations,
    #[error("a client certificate issued by meshbroker's Connector is required")]
    MissingCertificate,
    #[error("the client certificate {0} is revoked")]
    Revoked(String),
    #[error("the client certificate {0} has expired")]
    Expired(String),
    #[error("{0}")]
    Forbidden(String),
}

pub struct Authenticator {
    credentials: Credentials,
    tokens: NamespaceTokens,
    revocations: Revocations,
    /// Applications may send only with a client certificate, not a token.
    certificates_required: bool,
}

impl Authenticator {
    pub fn new(
        credentials: Credentials,
        tokens: NamespaceTokens,
        revocations: Revocations,
        certificates_required: bool,
    ) -> Self {
        Self {
            credentials,
            tokens,
            revocations,
            certificates_required,
        }
    }

    pub fn tokens(&self) -> &NamespaceTokens {
        &self.tokens
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Who sends to an Application's ingress: a bearer token when one is
    /// sent (the admin's, or an Application's unless certificates are
    /// required), else the Application a client certificate names — then
    /// with that certificate, whose holder the caller still has to match
    /// against the Application's uid.
    pub fn application_sender<'a>(
        &self,
        headers: &HeaderMap,
        certificate: Option<&'a ClientCertificate>,
    ) -> Result<(Caller, Option<&'a ClientCertificate>), AuthError> {
        one_authorization(headers)?;
        if bearer_token(headers).is_some() || certificate.is_none() {
            let caller = self.bearer(headers).map_err(|error| match error {
                AuthError::MissingBearer if self.certificates_required => {
                    AuthError::MissingCertificate
                }
                other => other,
            })?;
            if self.certificates_required && matches!(caller, Caller::Application(_)) {
                return Err(AuthError::MissingCertificate);
            }
            return Ok((caller, None));
        }
        let holder = self.certificate_holder(certificate)?;
        Ok((Caller::Application(holder.common_name.clone()), certificate))
    }

    /// The identity of an unrevoked client certificate.
    pub fn certificate_holder<'a>(
        &self,
        certificate: Option<&'a ClientCertificate>,
    ) -> Result<&'a PeerIdentity, AuthError> {
        let identity = &certificate.ok_or(AuthError::MissingCertificate)?.0;
        if self.revocations.get(&identity.sha256).is_some() {
            return Err(AuthError::Revoked(identity.sha256.clone()));
        }
        // The handshake checked the validity; a kept-alive connection may
        // outlive it.
        if identity.not_after < std::time::SystemTime::now() {
            return Err(AuthError::Expired(identity.sha256.clone()));
        }
        Ok(identity)
    }

    /// Bearer tokens: the admin token or any AccessToken.
    pub fn bearer(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        one_authorization(headers)?;
        let token = bearer_token(headers).ok_or(AuthError::MissingBearer)?;
        self.resolve_token(token)
    }

    /// When the bearer token's AccessToken was issued (its resourceVersion),
    /// if the caller sends one.
    pub fn token_issued_at(&self, headers: &HeaderMap) -> Option<u64> {
        let digest = sha256_hex(bearer_token(headers)?);
        self.tokens.get(&digest)?.issued_at
    }

    fn resolve_token(&self, token: &str) -> Result<Caller, AuthError> {
        let digest = sha256_hex(token);
        if same_digest(&digest, &self.credentials.admin_token_sha256) {
            return Ok(Caller::Admin);
        }
        self.tokens
            .get(&digest)
            .map(|scope| match scope.application {
                Some(application) => Caller::Application(application),
                None => Caller::Namespace(scope.namespace),
            })
            .ok_or(AuthError::Rejected)
    }

    /// The OSB API: basic auth with the broker credentials, or the admin token.
    pub fn platform(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        one_authorization(headers)?;
        if let Some(token) = bearer_token(headers) {
            return match self.resolve_token(token)? {
                Caller::Admin => Ok(()),
                Caller::Namespace(_) | Caller::Application(_) => Err(AuthError::Rejected),
            };
        }
        let (user, password) = basic_credentials(headers).ok_or(AuthError::MissingBasic)?;
        let user_ok = same_digest(
            &sha256_hex(&user),
            &sha256_hex(&self.credentials.osb_username),
        );
        let password_ok = same_digest(
            &sha256_hex(&password),
            &self.credentials.osb_password_sha256,
        );
        if user_ok && password_ok {
            Ok(())
        } else {
            Err(AuthError::Rejected)
        }
    }
}

/// `Authorization` is a singleton field (RFC 9110): of two, which one counts
/// would be a guess, so neither does.
fn one_authorization(headers: &HeaderMap) -> Result<(), AuthError> {
    match headers.get_all(AUTHORIZATION).iter().nth(1) {
        Some(_) => Err(AuthError::TwoAuthorizations),
        None => Ok(()),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
