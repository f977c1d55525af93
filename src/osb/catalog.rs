//! The catalog of Event ServiceClasses, built from the Applications in the store on
//! every request (so it changes the moment an Application or mapping does): one
//! class per Application service with an `Events` entry, one plan `default`.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::auth::sha256_hex;
use crate::resources::{Application, ApplicationMapping, ApplicationService, DeliverySpec};
use crate::store::{LabelSelector, StoreError, TypedStore};

pub const PLAN_NAME: &str = "default";
/// The maintenance level of every plan; raised when provisioning changes in a way
/// existing instances should be updated for.
pub const MAINTENANCE_VERSION: &str = "1.0.0";

/// Provisioning (and update) parameters every plan accepts.
pub static PARAMETERS_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "delivery": {
                "description": "How the Application's Channel delivers to this namespace's Broker",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "retry": { "type": "integer", "minimum": 0, "maximum": 100 },
                    "backoffPolicy": { "enum": ["linear", "exponential"] },
                    "backoffDelay": { "type": "string", "pattern": "^P" },
                    "timeout": {
                        "description": "ISO-8601 duration greater than zero",
                        "type": "string",
                        "pattern": "^P"
                    }
                }
            }
        }
    })
});

static PARAMETERS_VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> =
    LazyLock::new(|| jsonschema::validator_for(&PARAMETERS_SCHEMA).map_err(|e| e.to_string()));

/// Checks provisioning parameters against the plan's schema, then `delivery`
/// against the rules every Subscription's `delivery` follows (it becomes one); the
/// error names the field (`parameters.delivery.retry: ...`).
pub fn check_parameters(parameters: &Value) -> Result<(), String> {
    let validator = PARAMETERS_VALIDATOR
        .as_ref()
        .map_err(|e| format!("the parameters schema is broken: {e}"))?;
    if let Some(error) = validator.iter_errors(parameters).next() {
        let pointer = error.instance_path().to_string();
        let field: String = pointer.split('/').filter(|s| !s.is_empty()).fold(
            "parameters".to_string(),
            |acc, part| {
                if part.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{acc}[{part}]")
                } else {
                    format!("{acc}.{part}")
                }
            },
        );
        return Err(format!("{field}: {error}"));
    }
    if let Some(delivery) = parameters.get("delivery") {
        let delivery: DeliverySpec = serde_json::from_value(delivery.clone())
            .map_err(|e| format!("parameters.delivery: {e}"))?;
        delivery
            .validate()
            .map_err(|e| e.within("parameters.delivery").to_string())?;
    }
    Ok(())
}

/// One Event ServiceClass and where it comes from.
#[derive(Debug, Clone)]
pub struct ServiceClass {
    pub id: String,
    pub name: String,
    pub plan_id: String,
    pub application: String,
    pub service: ApplicationService,
    pub bindable: bool,
}

impl ServiceClass {
    pub fn to_osb(&self, application: &Application) -> Value {
        let service = &self.service;
        let event_types: Vec<Value> = service
            .event_types()
            .iter()
            .map(|t| json!({ "name": t.name, "version": t.version }))
            .collect();
        let description = if service.description.trim().is_empty() {
            format!("Events of {}", service.display_name)
        } else {
            service.description.clone()
        };
        let provider = if service.provider_display_name.is_empty() {
            application
                .spec
                .provider_display_name
                .clone()
                .unwrap_or_default()
        } else {
            service.provider_display_name.clone()
        };
        let mut tags = service.tags.clone();
        if !tags.iter().any(|t| t == "events") {
            tags.push("events".into());
        }
        json!({
            "id": self.id,
            "name": self.name,
            "description": description,
            "bindable": self.bindable,
            "instances_retrievable": true,
            "bindings_retrievable": false,
            "plan_updateable": false,
            "tags": tags,
            "metadata": {
                "displayName": service.display_name,
                "providerDisplayName": provider,
                "longDescription": service.long_description.clone().unwrap_or_else(|| description.clone()),
                "applicationName": self.application,
                "labels": service.labels,
                "eventTypes": event_types,
            },
            "plans": [{
                "id": self.plan_id,
                "name": PLAN_NAME,
                "description": "Delivers the service's events to the namespace's default Broker",
                "free": true,
                "bindable": self.bindable,
                "maintenance_info": {
                    "version": MAINTENANCE_VERSION,
                    "description": "meshbroker event wiring",
                },
                "schemas": {
                    "service_instance": {
                        "create": { "parameters": *PARAMETERS_SCHEMA },
                        "update": { "parameters": *PARAMETERS_SCHEMA },
                    }
                }
            }]
        })
    }
}

/// A CLI-friendly name: lower case, words joined by '-'.
fn cli_name(display_name: &str) -> String {
    let mut name = String::new();
    for c in display_name.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "events".to_string()
    } else {
        name.to_string()
    }
}

/// Every class, with names made unique across all Applications (a suffix from the
/// service id where two display names collide, so the name never depends on the
/// order Applications were registered in).
pub struct Catalog {
    pub classes: Vec<ServiceClass>,
    pub applications: HashMap<String, Application>,
}

impl Catalog {
    pub async fn load(store: &TypedStore) -> Result<Self, StoreError> {
        let mut applications: Vec<Application> =
            store.list(None, &LabelSelector::everything()).await?;
        // Oldest first, so when two Applications claim one service id the one
        // registered first keeps it, whatever order they are listed in.
        applications.sort_by(|a, b| {
            (&a.metadata.creation_timestamp, &a.metadata.name)
                .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
        });
        let mut candidates = Vec::new();
        let mut seen_ids = std::collections::HashSet::new();
        for application in &applications {
            let app_name = application.metadata.name.clone().unwrap_or_default();
            for service in &application.spec.services {
                if service.events_entry().is_none() {
                    continue;
                }
                if !seen_ids.insert(service.id.clone()) {
                    tracing::warn!(application = %app_name, service_id = %service.id, "service id already used by an older Application; left out of the catalog");
                    continue;
                }
                candidates.push((app_name.clone(), service.clone()));
            }
        }
        let mut name_counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, service) in &candidates {
            *name_counts
                .entry(cli_name(&service.display_name))
                .or_default() += 1;
        }
        let classes = candidates
            .into_iter()
            .map(|(application, service)| {
                let base = cli_name(&service.display_name);
                let name = if name_counts.get(&base).copied().unwrap_or_default() > 1 {
                    format!("{base}-{}", &sha256_hex(&service.id)[..6])
                } else {
                    base
                };
                ServiceClass {
                    id: service.id.clone(),
                    name,
                    plan_id: format!("{}-plan-{PLAN_NAME}", service.id),
                    bindable: service.api_entry().is_some(),
                    application,
                    service,
                }
            })
            .collect();
        let applications = applications
            .into_iter()
            .map(|a| (a.metadata.name.clone().unwrap_or_default(), a))
            .collect();
        Ok(Self {
            classes,
            applications,
        })
    }

    pub fn class(&self, service_id: &str) -> Option<&ServiceClass> {
        self.classes.iter().find(|c| c.id == service_id)
    }

    /// The OSB catalog document; with a namespace, only the classes mapped into it.
    pub fn to_osb(&self, mappings: Option<&[ApplicationMapping]>) -> Value {
        let services: Vec<Value> = self
            .classes
            .iter()
            .filter(|class| mappings.is_none_or(|m| enabled_in(m, class)))
            .filter_map(|class| {
                self.applications
                    .get(&class.application)
                    .map(|app| class.to_osb(app))
            })
            .collect();
        json!({ "services": services })
    }
}

/// Whether one of the namespace's mappings enables this class.
pub fn enabled_in(mappings: &[ApplicationMapping], class: &ServiceClass) -> bool {
    mappings.iter().any(|m| {
        m.metadata.name.as_deref() == Some(class.application.as_str()) && m.enables(&class.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cli_friendly() {
        assert_eq!(cli_name("Order Service (v1)"), "order-service-v1");
        assert_eq!(cli_name("  ***"), "events");
    }

    #[test]
    fn parameter_errors_name_the_field() {
        assert!(check_parameters(&json!({})).is_ok());
        assert!(
            check_parameters(&json!({"delivery": {"retry": 3, "backoffPolicy": "linear"}})).is_ok()
        );
        let error =
            check_parameters(&json!({"delivery": {"retry": 500}})).expect_err("too many retries");
        assert!(error.starts_with("parameters.delivery.retry:"), "{error}");
        let error = check_parameters(&json!({"colour": "blue"})).expect_err("unknown parameter");
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn delivery_parameters_follow_the_subscription_rules() {
        let cases = [
            (
                json!({"timeout": "PT0S"}),
                Some("parameters.delivery.timeout:"),
            ),
            (
                json!({"timeout": "-PT1S"}),
                Some("parameters.delivery.timeout:"),
            ),
            (
                json!({"backoffDelay": "P"}),
                Some("parameters.delivery.backoffDelay:"),
            ),
            (json!({"timeout": "PT0.5S", "backoffDelay": "PT0S"}), None),
        ];
        for (delivery, refused) in cases {
            let result = check_parameters(&json!({ "delivery": delivery }));
            match refused {
                Some(field) => {
                    let error = result.expect_err("refused");
                    assert!(error.starts_with(field), "{delivery}: {error}");
                }
                None => assert!(result.is_ok(), "{delivery}: {result:?}"),
            }
        }
    }
}
