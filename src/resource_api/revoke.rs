//! Deleting what a credential rests on revokes it before the deletion is
//! answered: the AccessToken itself, its namespace, or the Application it was
//! issued for. The token cache follows the store by a watch, which lags a few
//! milliseconds; without this a client that saw its DELETE succeed could still
//! send events with the credential. An Application's credentials are deleted
//! here too (not only by its controller, later), including rotated ones a person
//! created with `spec.application`, so none outlives it or comes back to life
//! when an Application of the same name is registered again.

use kube::ResourceExt;
use kube::core::DynamicObject;

use super::ApiError;
use crate::resources::{AccessToken, KindSpec};
use crate::state::AppState;
use crate::store::LabelSelector;

pub async fn after_delete(
    state: &AppState,
    kind: &KindSpec,
    deleted: &DynamicObject,
) -> Result<(), ApiError> {
    let tokens = state.auth.tokens();
    let name = deleted.name_any();
    match kind.kind.as_str() {
        "AccessToken" => {
            let digest = deleted
                .data
                .get("status")
                .and_then(|s| s.get("tokenSha256"))
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            tokens.forget(|known, _| known == digest);
        }
        "Namespace" => tokens.forget(|_, scope| scope.namespace == name),
        "Application" => {
            tokens.forget(|_, scope| scope.application.as_deref() == Some(name.as_str()));
            let issued = state
                .store
                .list::<AccessToken>(None, &LabelSelector::everything())
                .await?;
            for token in issued {
                if token.spec.application.as_deref() == Some(name.as_str()) {
                    let namespace = token.metadata.namespace.as_deref();
                    let token_name = token.metadata.name.as_deref().unwrap_or_default();
                    state
                        .store
                        .delete::<AccessToken>(namespace, token_name)
                        .await?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
