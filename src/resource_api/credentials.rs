//! Issuing an Application's credential when it is registered: an AccessToken
//! named after it in the integration namespace, scoped to its event ingress. The
//! token is shown once, in the registration's response; registering again (or
//! creating another AccessToken with `spec.application`) rotates it. A dry-run
//! registration answers with a token made for the answer and never stored: it
//! opens nothing. An AccessToken of that name that another Application's
//! credential holds is not taken over: the registration is refused first.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ApiError;
use super::dry_run::Commit;
use crate::auth::{generate_token, sha256_hex};
use crate::resources::{AccessToken, AccessTokenSpec, AccessTokenStatus, labels};
use crate::store::{StoreError, TypedStore};

/// Refuses to register `application` while the AccessToken its credential
/// would be is another Application's (an administrator's token of that name).
pub async fn check_name_free(
    store: &TypedStore,
    namespace: &str,
    application: &str,
) -> Result<(), ApiError> {
    let Some(existing) = store
        .get::<AccessToken>(Some(namespace), application)
        .await?
    else {
        return Ok(());
    };
    match existing.spec.application.as_deref() {
        Some(holder) if holder == application => Ok(()),
        holder => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Application {application}'s credential would be AccessToken {namespace}/{application}, which holds {}; delete or rename that AccessToken first",
                holder.map_or_else(
                    || "a namespace token".to_string(),
                    |h| format!("Application {h}'s credential")
                )
            ),
        )),
    }
}

/// Issues the credential, and answers with it and the digest of the one it
/// replaced (which must stop working before the registration is answered).
pub async fn issue(
    store: &TypedStore,
    namespace: &str,
    application: &str,
    commit: Commit,
) -> Result<(Value, Option<String>), StoreError> {
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
        return Ok((answer, None));
    }
    match store
        .get::<AccessToken>(Some(namespace), application)
        .await?
    {
        Some(existing) => {
            credential.metadata.resource_version = existing.metadata.resource_version;
            store.replace(&credential).await?;
            let replaced = existing.status.map(|status| status.token_sha256);
            Ok((answer, replaced))
        }
        None => {
            store.create(&credential).await?;
            Ok((answer, None))
        }
    }
}
