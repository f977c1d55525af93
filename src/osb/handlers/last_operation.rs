//! `GET /v2/service_instances/{instance_id}/last_operation`: the state of the
//! instance's latest (or the named) operation, with a description of the step it
//! is on or why it failed, and a Retry-After hint while it runs.
//!
//! A succeeded deprovision: polled by its own operation id, 200 `succeeded` for
//! `--deprovisioned-retention` (the spec's 410 is legal there, but clients such as
//! eden and the OSB checkers treat it as an error), 410 after; polled without an
//! operation id, 410 as the spec says. Once the tombstone is forgotten, a poll
//! naming a deprovision's operation is still 410; any other poll of an unknown
//! instance is 404.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OsbPath;
use crate::osb::OsbError;
use crate::osb::namespace::check_instance_namespace;
use crate::osb::types::{QueryParams, required};
use crate::provisioner::is_deprovision_operation;
use crate::resources::{OperationKind, OperationState};
use crate::state::AppState;

/// Seconds a platform should wait before polling a running operation again.
const POLL_AGAIN_SECONDS: &str = "2";

pub async fn last_operation(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let query = QueryParams::of(&uri)?;
    let wanted = query
        .get("operation")
        .map(|o| required("operation", Some(o)))
        .transpose()?;
    let Some(instance) = state.provisioner.instance(&path.instance_id).await? else {
        // Only a succeeded deprovision's record is ever forgotten.
        if wanted.as_deref().is_some_and(is_deprovision_operation) {
            return Err(deprovisioned(&path.instance_id));
        }
        return Err(OsbError::NotFound(format!(
            "instance {} does not exist",
            path.instance_id
        )));
    };
    check_instance_namespace(
        path.namespace.as_deref(),
        &instance.spec.namespace,
        &path.instance_id,
    )?;
    let operation = match &wanted {
        Some(id) => instance.operation(id).ok_or_else(|| {
            OsbError::BadRequest(format!(
                "operation {id} is not an operation of instance {}",
                path.instance_id
            ))
        })?,
        None => instance.last_operation().ok_or_else(|| {
            OsbError::NotFound(format!("instance {} has no operations", path.instance_id))
        })?,
    };
    if operation.kind == OperationKind::Deprovision
        && operation.state == OperationState::Succeeded
        && !(wanted.is_some() && operation.ended_within(state.config.deprovisioned_retention))
    {
        return Err(deprovisioned(&path.instance_id));
    }
    let mut body =
        json!({ "state": operation.state.as_str(), "description": operation.description });
    if operation.state == OperationState::Failed {
        match operation.kind {
            OperationKind::Update => {
                body["instance_usable"] = json!(true);
                body["update_repeatable"] = json!(true);
            }
            OperationKind::Deprovision => {
                body["instance_usable"] = json!(instance.status_or_default().provisioned)
            }
            OperationKind::Provision => {}
        }
    }
    if operation.state == OperationState::InProgress {
        return Ok((
            StatusCode::OK,
            [(RETRY_AFTER, POLL_AGAIN_SECONDS)],
            Json(body),
        )
            .into_response());
    }
    Ok(Json(body).into_response())
}

fn deprovisioned(instance_id: &str) -> OsbError {
    OsbError::Gone(format!("instance {instance_id} has been deprovisioned"))
}
