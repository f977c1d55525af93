//! What the `ServiceBroker` facade takes and answers, free of HTTP: each request's
//! details with its required ids present and its objects checked to be objects,
//! and the outcomes the handlers turn into status codes and bodies.

use serde_json::{Map, Value};

use crate::provisioner::Bound;
use crate::resources::OperationState;

/// `PUT /v2/service_instances/{instance_id}`'s body, and who sent it.
#[derive(Debug, Clone, Default)]
pub struct ProvisionDetails {
    pub service_id: String,
    pub plan_id: String,
    pub organization_guid: String,
    pub space_guid: String,
    pub context: Option<Value>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
    /// The platform `X-Broker-API-Originating-Identity` names, when it is sent.
    pub originating_platform: Option<String>,
}

/// `PATCH /v2/service_instances/{instance_id}`'s body.
#[derive(Debug, Clone, Default)]
pub struct UpdateDetails {
    pub service_id: String,
    pub plan_id: Option<String>,
    pub context: Option<Value>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
    /// The platform `X-Broker-API-Originating-Identity` names, when it is sent.
    pub originating_platform: Option<String>,
}

/// The ids a `DELETE` names in its query string (`?service_id&plan_id`).
#[derive(Debug, Clone, Default)]
pub struct ServicePlan {
    pub service_id: String,
    pub plan_id: String,
}

/// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`'s body.
#[derive(Debug, Clone, Default)]
pub struct BindDetails {
    pub service_id: String,
    pub plan_id: String,
    pub parameters: Option<Value>,
    pub bind_resource: Option<Value>,
    pub context: Option<Value>,
    /// The platform `X-Broker-API-Originating-Identity` names, when it is sent.
    pub originating_platform: Option<String>,
}

/// How a provision, update or deprovision stands when it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The instance is in the requested state; `by_this_request` when this
    /// request's operation put it there (201 for a provision), not an earlier one.
    Done { by_this_request: bool },
    /// An operation runs and the platform follows it (202).
    InProgress { operation: String },
}

/// The answer to `GET /v2/service_instances/{instance_id}/last_operation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastOperation {
    pub state: OperationState,
    pub description: String,
    /// Said for a failed update or deprovision only.
    pub instance_usable: Option<bool>,
    /// Said for a failed update only.
    pub update_repeatable: Option<bool>,
}

/// The answer to a bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub bound: Bound,
    /// The class's `API` entry: `gatewayUrl` and `targetUrl`, those it has.
    pub credentials: Map<String, Value>,
}
