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
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OsbError;
use super::namespace::check_instance_namespace;
use crate::provisioner::{Accepted, Completion};
use crate::resources::{OperationState, ServiceInstance};
use crate::state::AppState;

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

/// How long past its deadline a synchronous operation may take to stop: it checks
/// the deadline after every attempt of a step and never sleeps past it, so one
/// attempt's store calls at most.
const STOPPING_GRACE: Duration = Duration::from_secs(5);

/// How the platform takes the answer: `accepts_incomplete=true` follows the
/// operation; otherwise it needs the outcome within the broker's synchronous wait.
pub fn completion_for(state: &AppState, accepts_incomplete: bool) -> Completion {
    if accepts_incomplete {
        Completion::Asynchronous
    } else {
        Completion::Synchronous {
            within: state.config.sync_wait,
        }
    }
}

/// Answers a mutating request: 202 with the operation when the platform follows
/// it; otherwise the operation's outcome. An operation started for this request
/// ends by its deadline (the end of the synchronous wait), so the answer waits for
/// that end: 201/200, or 500 `OperationFailed` — never a 4xx after something was
/// written. An operation an earlier request started may run longer: this request
/// changed nothing, so when it is still running at the end of the wait the answer
/// is 422 `AsyncRequired`.
pub async fn answer(
    state: &AppState,
    instance_id: &str,
    accepted: Accepted,
    completion: Completion,
    done: StatusCode,
    what: &str,
) -> Result<Response, OsbError> {
    let (operation, fresh) = match accepted {
        Accepted::AlreadyDone => return Ok(empty(StatusCode::OK)),
        Accepted::Started { operation, fresh } => (operation, fresh),
    };
    let Completion::Synchronous { within } = completion else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "operation": operation })),
        )
            .into_response());
    };
    let patience = if fresh {
        within + STOPPING_GRACE
    } else {
        within
    };
    match state
        .provisioner
        .wait(instance_id, &operation, patience)
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
        _ if fresh => Err(OsbError::Internal(format!(
            "operation {operation} of instance {instance_id} did not stop at the end of the synchronous wait"
        ))),
        _ => Err(OsbError::AsyncRequired(format!(
            "{what} by an earlier request (operation {operation}) is still running; this request changed nothing: repeat it with accepts_incomplete=true to follow that operation"
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
