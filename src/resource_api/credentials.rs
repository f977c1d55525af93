//! Issuing an Application's credential when it is registered: an AccessToken
//! named after it in the integration namespace, scoped to its event ingress. The
//! token is shown once, in the registration's response; registering again (or
//! creating another AccessToken with `spec.application`) rotates it. A dry-run
//! registration answers with a token made for the answer and never stored: it
//! opens nothing.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::dry_run::Commit;
use crate::auth::{generate_token, sha256_hex};
use crate::resources::{AccessToken, AccessTokenSpec, AccessTokenStatus, labels};
use crate::store::{StoreError, TypedStore};

pub async fn issue(
    store: &TypedStore,
    namespace: &str,
    application: &str,
    commit: Commit,
) -> Result<Value, StoreError> {
    let token = generate_token("mbapp_").map_err(StoreError::internal)?;
    let mut credential = AccessToken::new(
        application,
        AccessTokenSpec {
            description: format!("event ingress credential of Application {application}"),
            application: Some(application.to_string()),
        },
    );
    credential.metadata.namespace = Some(namespace.to_string());
    credential.metadata.labels = Some(BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (
            labels::APPLICATION_NAME.to_string(),
            application.to_string(),
        ),
    ]));
    credential.status = Some(AccessTokenStatus {
        token_sha256: sha256_hex(&token),
        token: None,
    });
    let answer = json!({ "accessToken": format!("{namespace}/{application}"), "token": token });
    if commit.is_dry_run() {
        return Ok(answer);
    }
    match store
        .get::<AccessToken>(Some(namespace), application)
        .await?
    {
        Some(existing) => {
            credential.metadata.resource_version = existing.metadata.resource_version;
            store.replace(&credential).await?;
        }
        None => {
            store.create(&credential).await?;
        }
    }
    Ok(answer)
}
