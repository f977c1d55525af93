//! `GET /v2/service_instances/{instance_id}/last_operation`: the state of the
//! instance's latest (or the named) operation, with a description of the step it
//! is on or why it failed, and a Retry-After hint while it runs. 410 once a
//! deprovision has succeeded; 404 for an unknown instance.

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
use crate::resources::{OperationKind, OperationState};
use crate::server::AppState;

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
    let instance = state
        .provisioner
        .instance(&path.instance_id)
        .await?
        .ok_or_else(|| {
            OsbError::NotFound(format!("instance {} does not exist", path.instance_id))
        })?;
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
    if operation.kind == OperationKind::Deprovision && operation.state == OperationState::Succeeded
    {
        return Err(OsbError::Gone(format!(
            "instance {} has been deprovisioned",
            path.instance_id
        )));
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
