//! An Application's service ids are the catalog's: each names one Event
//! ServiceClass. An id another Application already has is refused here; the
//! catalog would leave the newer service out (it keeps the older one), and the
//! Application would look Ready while none of its services could be provisioned.

use serde_json::Value;

use super::ApiError;
use super::target::Target;
use crate::resources::{Application, Invalid, Refusal};
use crate::state::AppState;
use crate::store::LabelSelector;

pub async fn refuse_claimed_service_ids(
    state: &AppState,
    target: &Target,
    object: &Value,
) -> Result<(), ApiError> {
    if target.kind.kind != "Application" {
        return Ok(());
    }
    let Some(services) = object.pointer("/spec/services").and_then(Value::as_array) else {
        return Ok(());
    };
    let others: Vec<Application> = state
        .store
        .list::<Application>(None, &LabelSelector::everything())
        .await?
        .into_iter()
        .filter(|other| other.metadata.name.as_deref() != Some(target.name()))
        .collect();
    for (index, service) in services.iter().enumerate() {
        let Some(id) = service.get("id").and_then(Value::as_str) else {
            continue;
        };
        let holder = others
            .iter()
            .find(|other| other.spec.services.iter().any(|s| s.id == id));
        if let Some(holder) = holder {
            let holder = holder.metadata.name.as_deref().unwrap_or_default();
            return Err(ApiError::refused(Refusal::Invalid(Invalid::new(
                format!("spec.services[{index}].id"),
                format!(
                    "service id {id} is already Application {holder}'s: the catalog names a class by it"
                ),
            ))));
        }
    }
    Ok(())
}
