//! The TokenRequest controller (Kyma's Connector, first step): a TokenRequest
//! named after an Application gets a one-time token and the configuration URL
//! that carries it, valid for the token lifetime; one naming no Application is
//! marked `ERR` until the Application exists; unused tokens are marked expired
//! when their time is up.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use super::runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use super::settings::MeshSettings;
use crate::auth::generate_token;
use crate::resources::{Application, TokenRequest, TokenRequestStatus, kind_of, token_state};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError, TypedStore};

/// Where the Connector's first URL lives on the events listener.
pub const INFO_PATH: &str = "/v1/applications/signingRequests/info";

struct TokenRequestController {
    store: TypedStore,
    settings: Arc<MeshSettings>,
}

pub fn start(store: TypedStore, settings: Arc<MeshSettings>, shutdown: Shutdown) {
    let lookup = store.clone();
    let named_after = move |application: kube::core::DynamicObject| {
        let store = lookup.clone();
        async move {
            let name = application.metadata.name.unwrap_or_default();
            let requests = store
                .list::<TokenRequest>(None, &LabelSelector::everything())
                .await
                .unwrap_or_default();
            requests
                .iter()
                .filter(|r| r.metadata.name.as_deref() == Some(name.as_str()))
                .map(|r| {
                    let namespace = r.metadata.namespace.as_deref().unwrap_or_default();
                    ObjectKey::namespaced(namespace, &name)
                })
                .collect()
        }
    };
    let sources = vec![
        Source::primary(kind_of::<TokenRequest>()),
        Source::mapped_async(kind_of::<Application>(), named_after),
    ];
    let raw = store.raw().clone();
    spawn_controller(
        "tokenrequests",
        raw,
        sources,
        Arc::new(TokenRequestController { store, settings }),
        shutdown,
    );
}

#[async_trait]
impl Reconciler for TokenRequestController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let namespace = key.namespace.as_deref();
        let Some(request) = self.store.get::<TokenRequest>(namespace, &key.name).await? else {
            return Ok(Requeue::Done);
        };
        let status = request.status.clone().unwrap_or_default();
        let (wanted, requeue) = match status.state.as_str() {
            token_state::OK | token_state::CONFIGURED => {
                if self.application_uid(&key.name).await? == status.application_uid {
                    self.expire_when_due(status)
                } else {
                    (withdrawn(status, &key.name), Requeue::Done)
                }
            }
            token_state::ISSUED | token_state::EXPIRED => return Ok(Requeue::Done),
            _ => self.issue(&key.name).await?,
        };
        if request.status.as_ref() != Some(&wanted) {
            let mut updated = request;
            updated.status = Some(wanted);
            self.store.replace(&updated).await?;
        }
        Ok(requeue)
    }
}

impl TokenRequestController {
    /// A first token, or `ERR` while no Application has the request's name.
    async fn issue(&self, application: &str) -> Result<(TokenRequestStatus, Requeue), StoreError> {
        let Some(ttl) = self.settings.connector_token_ttl else {
            let status = TokenRequestStatus {
                application: application.to_string(),
                state: token_state::ERROR.into(),
                message: "the Connector is off: it needs TLS on the events listener (--events-tls-cert/--events-tls-key or --events-tls-hosts)".into(),
                ..Default::default()
            };
            return Ok((status, Requeue::Done));
        };
        let uid = self.application_uid(application).await?;
        if uid.is_empty() {
            let status = TokenRequestStatus {
                application: application.to_string(),
                state: token_state::ERROR.into(),
                message: format!("there is no Application {application:?}"),
                ..Default::default()
            };
            return Ok((status, Requeue::Done));
        }
        let token = generate_token("").map_err(StoreError::internal)?;
        let expire_after = Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(ttl).map_err(StoreError::internal)?)
            .map_err(StoreError::internal)?;
        let status = TokenRequestStatus {
            expire_after: expire_after.to_string(),
            application: application.to_string(),
            application_uid: uid,
            state: token_state::OK.into(),
            url: format!("{}{INFO_PATH}?token={token}", self.settings.events_url),
            token,
            ..Default::default()
        };
        Ok((status, Requeue::After(ttl)))
    }

    /// The uid of the Application so named; empty when there is none.
    async fn application_uid(&self, application: &str) -> Result<String, StoreError> {
        Ok(self
            .store
            .get::<Application>(None, application)
            .await?
            .and_then(|found| found.metadata.uid)
            .unwrap_or_default())
    }

    fn expire_when_due(&self, mut status: TokenRequestStatus) -> (TokenRequestStatus, Requeue) {
        let left = status
            .expire_after
            .parse::<Timestamp>()
            .ok()
            .and_then(|at| Duration::try_from(at.duration_since(Timestamp::now())).ok())
            .filter(|left| !left.is_zero());
        match left {
            Some(left) => (status, Requeue::After(left)),
            None => {
                status.state = token_state::EXPIRED.into();
                status.token.clear();
                status.url.clear();
                status.csr_token_sha256.clear();
                (status, Requeue::Done)
            }
        }
    }
}

/// The tokens of a request whose Application was deleted (or replaced by
/// another of the same name) stop working; `ERR` gets the request a new
/// token once an Application of its name exists again.
fn withdrawn(mut status: TokenRequestStatus, application: &str) -> TokenRequestStatus {
    status.state = token_state::ERROR.into();
    status.message = format!(
        "the Application {application:?} the token was issued for was deleted; a new token comes when one of that name is registered"
    );
    status.token.clear();
    status.url.clear();
    status.csr_token_sha256.clear();
    status.application_uid.clear();
    status
}
