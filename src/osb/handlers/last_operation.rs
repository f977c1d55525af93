//! `GET /v2/service_instances/{instance_id}/last_operation?operation`: 200 with
//! the operation's state and description (and whether the instance is usable
//! after a failed update or deprovision), with a Retry-After hint while it runs;
//! 410 for a deprovisioned instance, 404 for an unknown one.

use axum::Json;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::paths::{InstancePath, OsbPath};
use crate::osb::requests::QueryParams;
use crate::resources::OperationState;

/// Seconds a platform should wait before polling a running operation again.
const POLL_AGAIN_SECONDS: &str = "2";

pub async fn last_operation(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<InstancePath>,
    query: QueryParams,
) -> Result<Response, OsbError> {
    let wanted = query.operation()?;
    let named = query.named_ids()?;
    let operation = broker
        .last_operation(&path, wanted.as_deref(), &named)
        .await?;
    let mut body =
        json!({ "state": operation.state.as_str(), "description": operation.description });
    if let Some(usable) = operation.instance_usable {
        body["instance_usable"] = json!(usable);
    }
    if let Some(repeatable) = operation.update_repeatable {
        body["update_repeatable"] = json!(repeatable);
    }
    if operation.state == OperationState::InProgress {
        return Ok(([(RETRY_AFTER, POLL_AGAIN_SECONDS)], Json(body)).into_response());
    }
    Ok(Json(body).into_response())
}
