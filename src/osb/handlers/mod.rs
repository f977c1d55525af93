//! One handler per OSB endpoint, each in the same order: decode → required ids →
//! ids known in the catalog → namespace and mapping → provisioner → status code.

mod bindings;
mod catalog;
mod deprovision;
mod fetch;
mod last_operation;
mod provision;
mod update;

pub use bindings::{bind, unbind};
pub use catalog::catalog;
pub use deprovision::deprovision;
pub use fetch::fetch;
pub use last_operation::last_operation;
pub use provision::provision;
pub use update::update;

use std::collections::HashMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OsbError;
use super::namespace::check_instance_namespace;
use crate::provisioner::Accepted;
use crate::resources::{OperationState, ServiceInstance};
use crate::server::AppState;

/// The path parameters every OSB route may carry.
pub struct OsbPath {
    pub namespace: Option<String>,
    pub instance_id: String,
    pub binding_id: Option<String>,
}

impl OsbPath {
    pub fn from(params: HashMap<String, String>) -> Result<Self, OsbError> {
        let instance_id = params.get("instance_id").cloned().unwrap_or_default();
        if instance_id.trim().is_empty() {
            return Err(OsbError::BadRequest("instance_id must not be empty".into()));
        }
        let binding_id = params.get("binding_id").cloned();
        if binding_id.as_ref().is_some_and(|b| b.trim().is_empty()) {
            return Err(OsbError::BadRequest("binding_id must not be empty".into()));
        }
        Ok(Self {
            namespace: params.get("namespace").cloned(),
            instance_id,
            binding_id,
        })
    }
}

impl OsbPath {
    /// The instance this path names, if it exists and is not deprovisioned; under a
    /// `/{namespace}` prefix it must live in that namespace (400 otherwise).
    pub async fn live_instance(
        &self,
        state: &AppState,
    ) -> Result<Option<ServiceInstance>, OsbError> {
        let instance = state
            .provisioner
            .instance(&self.instance_id)
            .await?
            .filter(|i| i.is_live());
        if let Some(instance) = &instance {
            check_instance_namespace(
                self.namespace.as_deref(),
                &instance.spec.namespace,
                &self.instance_id,
            )?;
        }
        Ok(instance)
    }

    pub fn no_such_instance(&self) -> OsbError {
        OsbError::NotFound(format!("instance {} does not exist", self.instance_id))
    }
}

pub fn empty(status: StatusCode) -> Response {
    (status, Json(json!({}))).into_response()
}

/// Answers a mutating request: 202 with the operation when the platform accepts
/// async; otherwise waits a bounded time for the operation and answers its outcome,
/// or 422 AsyncRequired (the operation keeps running and can be followed by
/// repeating the request with accepts_incomplete=true).
pub async fn answer(
    state: &AppState,
    instance_id: &str,
    accepted: Accepted,
    accepts_incomplete: bool,
    done: StatusCode,
    what: &str,
) -> Result<Response, OsbError> {
    let (operation, fresh) = match accepted {
        Accepted::AlreadyDone => return Ok(empty(StatusCode::OK)),
        Accepted::Started { operation, fresh } => (operation, fresh),
    };
    if accepts_incomplete {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "operation": operation })),
        )
            .into_response());
    }
    let wait = state.config.sync_wait;
    match state
        .provisioner
        .wait(instance_id, &operation, wait)
        .await?
    {
        Some(OperationState::Succeeded) => Ok(empty(if fresh { done } else { StatusCode::OK })),
        Some(OperationState::Failed) => {
            let description = state
                .provisioner
                .instance(instance_id)
                .await?
                .and_then(|i| i.operation(&operation).map(|o| o.description.clone()))
                .unwrap_or_default();
            Err(OsbError::OperationFailed(format!(
                "{what} failed: {description}"
            )))
        }
        _ => Err(OsbError::AsyncRequired(format!(
            "{what} did not finish within {}s; repeat the request with accepts_incomplete=true to follow operation {operation}",
            wait.as_secs()
        ))),
    }
}

/// `maintenance_info`: absent or `{}` is no conflict; otherwise its version must be
/// the plan's. Only `version` counts, as the spec says.
pub fn check_maintenance_info(
    value: Option<&serde_json::Value>,
) -> Result<Option<serde_json::Value>, OsbError> {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fields)) if fields.is_empty() => Ok(None),
        Some(Value::Object(fields)) => match fields.get("version") {
            Some(Value::String(version)) if version == super::MAINTENANCE_VERSION => {
                Ok(value.cloned())
            }
            Some(Value::String(version)) => Err(OsbError::MaintenanceInfoConflict(format!(
                "maintenance_info.version {version} does not match the plan's version {}",
                super::MAINTENANCE_VERSION
            ))),
            _ => Err(OsbError::BadRequest(
                "maintenance_info.version must be a string".into(),
            )),
        },
        Some(_) => Err(OsbError::BadRequest(
            "maintenance_info must be an object".into(),
        )),
    }
}
