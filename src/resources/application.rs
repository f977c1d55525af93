//! `applicationconnector.kyma-project.io/v1alpha1`: Application (a connected system
//! and the services it offers) and ApplicationMapping (an Application enabled in a
//! namespace). An Application's `Events` entries carry its event catalog as an
//! AsyncAPI document, from which the event types and their payload schemas are read.

use std::collections::{BTreeMap, BTreeSet};

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Conditions, Invalid, PayloadSchema};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "applicationconnector.kyma-project.io",
    version = "v1alpha1",
    kind = "Application",
    status = "ApplicationStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub services: Vec<ApplicationService>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationService {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default)]
    pub provider_display_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub entries: Vec<ServiceEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    /// `API` or `Events`.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_label: Option<String>,
    /// The entry's document: AsyncAPI (2.x `channels` or Kyma's 1.x `topics`) for
    /// `Events`, OpenAPI for `API`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub specification: Option<serde_json::Value>,
}

pub const ENTRY_EVENTS: &str = "Events";
pub const ENTRY_API: &str = "API";

pub(super) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// An event type from a service's AsyncAPI document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventType {
    pub name: String,
    pub version: String,
    #[serde(skip)]
    pub payload_schema: Option<serde_json::Value>,
}

impl ApplicationService {
    pub fn events_entry(&self) -> Option<&ServiceEntry> {
        self.entries.iter().find(|e| e.type_ == ENTRY_EVENTS)
    }

    pub fn api_entry(&self) -> Option<&ServiceEntry> {
        self.entries.iter().find(|e| e.type_ == ENTRY_API)
    }

    /// The event types this service emits, from its AsyncAPI document. Kyma names
    /// each channel (2.x) or topic (1.x) `<type>.<version>`, e.g. `order.created.v1`.
    pub fn event_types(&self) -> Vec<EventType> {
        let Some(document) = self.events_entry().and_then(|e| e.specification.as_ref()) else {
            return Vec::new();
        };
        let channels = document
            .get("channels")
            .or_else(|| document.get("topics"))
            .and_then(|c| c.as_object());
        let mut types: Vec<EventType> = channels
            .into_iter()
            .flatten()
            .map(|(channel, operations)| {
                let (name, version) = split_version(channel);
                EventType {
                    name: name.to_string(),
                    version: version.to_string(),
                    payload_schema: payload_schema(operations),
                }
            })
            .collect();
        types.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        types
    }
}

/// `order.created.v1` → (`order.created`, `v1`); no version suffix → (`name`, `v1`).
fn split_version(channel: &str) -> (&str, &str) {
    match channel.rsplit_once('.') {
        Some((name, version))
            if version.len() > 1
                && version.starts_with('v')
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            (name, version)
        }
        _ => (channel, "v1"),
    }
}

/// The payload schema of the channel's publish/subscribe message, when given inline.
fn payload_schema(operations: &serde_json::Value) -> Option<serde_json::Value> {
    ["subscribe", "publish"].iter().find_map(|op| {
        let operation = operations.get(op)?;
        operation
            .get("message")
            .and_then(|m| m.get("payload"))
            .or_else(|| operation.get("payload"))
            .cloned()
    })
}

/// The largest payload schema (as JSON text) and the most schema text one service
/// may declare. Compiled validators take tens of times their text in memory (a
/// 50,000-value enum, ~450 KB of JSON, took ~40 MB), and the ingress holds one per
/// event type for as long as the Application lives: these bounds keep a service
/// at a few MB however its document is written, and no real payload schema comes
/// near them.
pub const MAX_PAYLOAD_SCHEMA_BYTES: usize = 64 * 1024;
pub const MAX_SERVICE_SCHEMA_BYTES: usize = 256 * 1024;

/// Every payload schema must compile (the ingress checks events against it) and
/// stay within the bounds above. A schema that does not compile — a remote
/// `$ref`, which meshbroker never fetches, an unknown draft — is refused when the
/// Application is written instead of silently switching validation off.
fn check_payload_schemas(service: &ApplicationService) -> Result<(), String> {
    let mut total = 0;
    for event_type in service.event_types() {
        let Some(schema) = &event_type.payload_schema else {
            continue;
        };
        let named = format!(
            "the payload schema of {} {}",
            event_type.name, event_type.version
        );
        let size = serde_json::to_vec(schema).map_or(usize::MAX, |text| text.len());
        if size > MAX_PAYLOAD_SCHEMA_BYTES {
            return Err(format!(
                "{named} is {size} bytes of JSON; at most {MAX_PAYLOAD_SCHEMA_BYTES} are allowed"
            ));
        }
        total += size;
        if total > MAX_SERVICE_SCHEMA_BYTES {
            return Err(format!(
                "the payload schemas of one service are over {MAX_SERVICE_SCHEMA_BYTES} bytes of JSON together"
            ));
        }
        PayloadSchema::compile(schema)
            .map_err(|error| format!("{named} does not compile: {error}"))?;
    }
    Ok(())
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Application's event ingress URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_url: Option<String>,
}

impl Conditions for ApplicationStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Application {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut ids = BTreeSet::new();
        for (i, service) in self.spec.services.iter().enumerate() {
            let at = |field: &str| format!("spec.services[{i}].{field}");
            if service.id.trim().is_empty() {
                return Err(Invalid::new(at("id"), "must not be empty"));
            }
            if !ids.insert(service.id.as_str()) {
                return Err(Invalid::new(
                    at("id"),
                    format!("{:?} is used by another service", service.id),
                ));
            }
            if service.display_name.trim().is_empty() {
                return Err(Invalid::new(at("displayName"), "must not be empty"));
            }
            for (j, entry) in service.entries.iter().enumerate() {
                let at = |field: &str| format!("spec.services[{i}].entries[{j}].{field}");
                match entry.type_.as_str() {
                    ENTRY_EVENTS => {
                        if let Some(document) = &entry.specification
                            && document.get("channels").is_none()
                            && document.get("topics").is_none()
                        {
                            return Err(Invalid::new(
                                at("specification"),
                                "an AsyncAPI document needs `channels` (2.x) or `topics` (1.x)",
                            ));
                        }
                        check_payload_schemas(service)
                            .map_err(|message| Invalid::new(at("specification"), message))?;
                    }
                    ENTRY_API => {
                        if entry.gateway_url.is_none() && entry.target_url.is_none() {
                            return Err(Invalid::new(
                                at("gatewayUrl"),
                                "an API entry needs gatewayUrl or targetUrl",
                            ));
                        }
                    }
                    other => {
                        return Err(Invalid::new(
                            at("type"),
                            format!("{other:?} is not API or Events"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Enables an Application in a namespace; named after the Application. An empty
/// service list enables all of its services.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "applicationconnector.kyma-project.io",
    version = "v1alpha1",
    kind = "ApplicationMapping",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationMappingSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<MappedService>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct MappedService {
    pub id: String,
}

impl ApplicationMapping {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (i, service) in self.spec.services.iter().enumerate() {
            if service.id.trim().is_empty() {
                return Err(Invalid::new(
                    format!("spec.services[{i}].id"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// Whether this mapping enables the Application service with this id.
    pub fn enables(&self, service_id: &str) -> bool {
        self.spec.services.is_empty() || self.spec.services.iter().any(|s| s.id == service_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_with(document: serde_json::Value) -> ApplicationService {
        ApplicationService {
            id: "s".into(),
            display_name: "S".into(),
            entries: vec![ServiceEntry {
                type_: ENTRY_EVENTS.into(),
                specification: Some(document),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn event_types_come_from_asyncapi_2_channels() {
        let service = service_with(serde_json::json!({
            "asyncapi": "2.0.0",
            "channels": {
                "order.created.v1": {"subscribe": {"message": {"payload": {"type": "object"}}}},
                "order.cancelled.v2": {"subscribe": {"message": {}}}
            }
        }));
        let types = service.event_types();
        assert_eq!(types.len(), 2);
        assert_eq!(
            (types[0].name.as_str(), types[0].version.as_str()),
            ("order.cancelled", "v2")
        );
        assert_eq!(
            (types[1].name.as_str(), types[1].version.as_str()),
            ("order.created", "v1")
        );
        assert_eq!(
            types[1].payload_schema,
            Some(serde_json::json!({"type": "object"}))
        );
        assert_eq!(types[0].payload_schema, None);
    }

    #[test]
    fn event_types_come_from_kyma_asyncapi_1_topics() {
        let service = service_with(serde_json::json!({
            "topics": {"customer.registered": {"subscribe": {"payload": {"type": "string"}}}}
        }));
        let types = service.event_types();
        assert_eq!(types[0].name, "customer.registered");
        assert_eq!(types[0].version, "v1");
        assert!(types[0].payload_schema.is_some());
    }
}
