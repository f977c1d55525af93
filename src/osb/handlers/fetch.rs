//! `GET /v2/service_instances/{instance_id}`: 200 with the instance; 404 when it
//! does not exist or is still being provisioned; 422 ConcurrencyError while it is
//! being updated.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OsbPath;
use crate::osb::OsbError;
use crate::resources::{OperationKind, OperationState};
use crate::state::AppState;

pub async fn fetch(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let instance = path
        .live_instance(&state)
        .await?
        .ok_or_else(|| path.no_such_instance())?;
    if let Some(op) = instance.running_operation()
        && op.kind == OperationKind::Update
    {
        return Err(OsbError::Concurrency(format!(
            "instance {} is being updated (operation {})",
            path.instance_id, op.id
        )));
    }
    if !instance.status_or_default().provisioned {
        let why = match instance.last_operation() {
            Some(op) if op.state == OperationState::InProgress => "is still being provisioned",
            _ => "was not provisioned successfully",
        };
        return Err(OsbError::NotFound(format!(
            "instance {} {why}",
            path.instance_id
        )));
    }
    let spec = &instance.spec;
    Ok(Json(json!({
        "service_id": spec.service_id,
        "plan_id": spec.plan_id,
        "parameters": spec.parameters.clone().unwrap_or_else(|| json!({})),
        "maintenance_info": { "version": crate::osb::MAINTENANCE_VERSION },
        "metadata": {
            "labels": {},
            "attributes": { "namespace": spec.namespace, "application": spec.application },
        },
    }))
    .into_response())
}
