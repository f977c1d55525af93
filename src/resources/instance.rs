//! `meshbroker.io/v1alpha1` ServiceInstance: the durable record of one OSB service
//! instance and of the operations run on it. Cluster-scoped, named after the OSB
//! instance id (or a digest of it when the id is not a valid object name). A
//! deprovisioned instance stays as a tombstone so repeated DELETEs answer 410.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Invalid;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "meshbroker.io",
    version = "v1alpha1",
    kind = "ServiceInstance",
    status = "ServiceInstanceStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceSpec {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    /// The namespace the instance wires into the mesh.
    pub namespace: String,
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub context: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub parameters: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub maintenance_info: Option<serde_json::Value>,
}

fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceStatus {
    /// True once provisioning succeeded, until deprovisioning succeeds.
    #[serde(default)]
    pub provisioned: bool,
    /// True once deprovisioning succeeded: the record is a tombstone.
    #[serde(default)]
    pub deleted: bool,
    /// Newest last; the last few are kept so an older operation can still be polled.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Bindings of an API-bindable class (credentials are derived, not stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub parameters: Option<serde_json::Value>,
    /// What the platform said the binding is for (OSB `bind_resource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub bind_resource: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    pub kind: OperationKind,
    pub state: OperationState,
    /// What the operation is doing now, or why it failed; shown by last_operation.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub attempts: u32,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// For a platform that needs the outcome in the answer (no
    /// `accepts_incomplete`): the end of its wait (RFC 3339). A step still waiting
    /// then fails the operation, so nothing goes on behind the platform's back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// For updates: the parameters and plan the update applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub request: Option<serde_json::Value>,
}

/// The parameters in an update's `request` (`{"parameters": …, "context": …}`);
/// None when it has none or `null`.
pub fn parameters_requested(request: Option<&serde_json::Value>) -> Option<&serde_json::Value> {
    request
        .and_then(|r| r.get("parameters"))
        .filter(|p| !p.is_null())
}

impl Operation {
    /// The parameters an update asked for; None when it asked for none (or
    /// for `null`) and for other operations.
    pub fn requested_parameters(&self) -> Option<&serde_json::Value> {
        parameters_requested(self.request.as_ref())
    }

    /// The deadline `within` from now, as `deadline` records it.
    pub fn deadline_after(within: std::time::Duration) -> String {
        let within = jiff::SignedDuration::try_from(within).unwrap_or(jiff::SignedDuration::MAX);
        jiff::Timestamp::now()
            .checked_add(within)
            .unwrap_or(jiff::Timestamp::MAX)
            .to_string()
    }

    /// How long until its deadline, if it has one; zero once it has passed (or
    /// when it cannot be read: then the operation must not wait on anything).
    pub fn time_left(&self) -> Option<std::time::Duration> {
        let deadline = self.deadline.as_deref()?;
        let left = deadline
            .parse::<jiff::Timestamp>()
            .map(|due| due.duration_since(jiff::Timestamp::now()))
            .ok()
            .and_then(|left| std::time::Duration::try_from(left).ok());
        Some(left.unwrap_or_default())
    }

    /// Whether it ended less than `period` ago; false when it has not ended, or
    /// when its end time cannot be read (then nothing is promised about it).
    pub fn ended_within(&self, period: std::time::Duration) -> bool {
        let Some(ended) = self
            .finished_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            return false;
        };
        match std::time::Duration::try_from(jiff::Timestamp::now().duration_since(ended)) {
            Ok(age) => age < period,
            // An end in the future (the clock stepped back) is recent.
            Err(_) => true,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    #[default]
    Provision,
    Update,
    Deprovision,
}

/// The states OSB's last_operation reports, spelled as the spec spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum OperationState {
    #[default]
    #[serde(rename = "in progress")]
    InProgress,
    #[serde(rename = "succeeded")]
    Succeeded,
    #[serde(rename = "failed")]
    Failed,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl ServiceInstance {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (field, value) in [
            ("spec.instanceId", &self.spec.instance_id),
            ("spec.serviceId", &self.spec.service_id),
            ("spec.planId", &self.spec.plan_id),
            ("spec.namespace", &self.spec.namespace),
            ("spec.application", &self.spec.application),
        ] {
            if value.is_empty() {
                return Err(Invalid::new(field, "must not be empty"));
            }
        }
        Ok(())
    }

    pub fn status_or_default(&self) -> ServiceInstanceStatus {
        self.status.clone().unwrap_or_default()
    }

    pub fn last_operation(&self) -> Option<&Operation> {
        self.status.as_ref()?.operations.last()
    }

    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.status.as_ref()?.operations.iter().find(|o| o.id == id)
    }

    /// The operation still running on this instance, if any.
    pub fn running_operation(&self) -> Option<&Operation> {
        self.last_operation()
            .filter(|o| o.state == OperationState::InProgress)
    }

    pub fn is_live(&self) -> bool {
        self.status.as_ref().is_none_or(|s| !s.deleted)
    }
}
