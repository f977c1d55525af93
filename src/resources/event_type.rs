//! `eventing.knative.dev/v1beta2` EventType: one event type an Application
//! declares, in a namespace that provisioned it, so the tools people already
//! use (`kn eventtype list`, Knative UIs) show the event catalog. meshbroker
//! writes them (see the EventType controller); they route nothing.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Conditions, Invalid, KReference};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "eventing.knative.dev",
    version = "v1beta2",
    kind = "EventType",
    root = "KnativeEventType",
    namespaced,
    status = "EventTypeStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeSpec {
    /// The CloudEvents `type`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The CloudEvents `source` events of this type carry (the Application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The payload's JSON Schema, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_data: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where events of this type can be had: the namespace's Broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<KReference>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Conditions for EventTypeStatus {
    fn conditions(&self) -> &[super::Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<super::Condition> {
        &mut self.conditions
    }
}

impl KnativeEventType {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.spec.type_.trim().is_empty() {
            return Err(Invalid::new("spec.type", "must not be empty"));
        }
        if self
            .spec
            .schema_data
            .as_ref()
            .is_some_and(|s| s.len() > 256 * 1024)
        {
            return Err(Invalid::new("spec.schemaData", "must be at most 256 KiB"));
        }
        Ok(())
    }
}
