//! The catalog of Event ServiceClasses, built from the Applications in the store on
//! every request (so it changes the moment an Application or mapping does): one
//! class per Application service with an `Events` entry, one plan `default`. And
//! what a request must say to use a class: its plan, a mapping that enables it,
//! an `API` entry to bind.

use std::collections::{BTreeMap, HashMap, HashSet};

use kube::ResourceExt;
use serde_json::{Value, json};

use super::OsbError;
use super::plan::{MAINTENANCE_VERSION, PARAMETERS_SCHEMA};
use crate::auth::sha256_hex;
use crate::resources::{Application, ApplicationMapping, ApplicationService, ServiceEntry};
use crate::store::{LabelSelector, StoreError, TypedStore};

pub const PLAN_NAME: &str = "default";

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
    /// `plan_id` must be the class's one plan: 400 otherwise.
    pub fn check_plan(&self, plan_id: &str) -> Result<(), OsbError> {
        if plan_id == self.plan_id {
            return Ok(());
        }
        Err(OsbError::BadRequest(format!(
            "plan_id {plan_id} is not a plan of service {} (its plan is {})",
            self.id, self.plan_id
        )))
    }

    /// Whether this mapping (of some namespace) enables the class.
    pub fn enabled_by(&self, mapping: &ApplicationMapping) -> bool {
        mapping.metadata.name.as_deref() == Some(self.application.as_str())
            && mapping.enables(&self.id)
    }

    /// The class can be provisioned into `namespace` only when the namespace's
    /// mapping of its Application enables it: 400 otherwise, saying which mapping
    /// to create.
    pub fn check_enabled(
        &self,
        mapping: Option<&ApplicationMapping>,
        namespace: &str,
    ) -> Result<(), OsbError> {
        if mapping.is_some_and(|m| self.enabled_by(m)) {
            return Ok(());
        }
        Err(OsbError::BadRequest(format!(
            "service {} of Application {} is not enabled in namespace {namespace}: create an ApplicationMapping {namespace}/{} that includes it",
            self.name, self.application, self.application
        )))
    }

    /// The `API` entry a binding's credentials come from; an events-only class is
    /// not bindable: 400.
    pub fn api_to_bind(&self) -> Result<&ServiceEntry, OsbError> {
        self.service.api_entry().ok_or_else(|| {
            OsbError::BadRequest(format!(
                "service {} is not bindable: it offers events only (bindable: false); provision it without binding",
                self.name
            ))
        })
    }

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
        // The service's own provider, else its Application's, else none (empty).
        let provider = match &application.spec.provider_display_name {
            _ if !service.provider_display_name.is_empty() => {
                service.provider_display_name.as_str()
            }
            Some(application_provider) => application_provider.as_str(),
            None => "",
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

/// Each service's class name: its display name made CLI-friendly, and where
/// names collide a suffix from the service id's digest, longer until no two
/// are alike (a display name may itself end in another's suffix). Depends
/// only on the services, not on their order.
fn unique_names(candidates: &[(String, ApplicationService)]) -> Vec<String> {
    let digests: Vec<String> = candidates
        .iter()
        .map(|(_, service)| sha256_hex(&service.id))
        .collect();
    let bases: Vec<String> = candidates
        .iter()
        .map(|(_, service)| cli_name(&service.display_name))
        .collect();
    let mut suffixes = vec![0; candidates.len()];
    let name = |i: usize, suffix: usize| match suffix {
        0 => bases[i].clone(),
        n => format!("{}-{}", bases[i], &digests[i][..n]),
    };
    loop {
        let names: Vec<String> = (0..candidates.len())
            .map(|i| name(i, suffixes[i]))
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for name in &names {
            *counts.entry(name.as_str()).or_default() += 1;
        }
        let mut lengthened = false;
        for (i, name) in names.iter().enumerate() {
            if counts[name.as_str()] > 1 && suffixes[i] < 64 {
                suffixes[i] = match suffixes[i] {
                    0 => 6,
                    n => (n * 2).min(64),
                };
                lengthened = true;
            }
        }
        if !lengthened {
            return names;
        }
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
        let applications: Vec<Application> = store.list(None, &LabelSelector::everything()).await?;
        Ok(Self::of(applications))
    }

    pub fn of(mut applications: Vec<Application>) -> Self {
        // Oldest first, so when two Applications claim one service id the one
        // registered first keeps it, whatever order they are listed in.
        applications.sort_by(|a, b| {
            (&a.metadata.creation_timestamp, &a.metadata.name)
                .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
        });
        let mut candidates = Vec::new();
        let mut seen_ids = HashSet::new();
        for application in &applications {
            let app_name = application.name_any();
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
        let names = unique_names(&candidates);
        let classes = candidates
            .into_iter()
            .zip(names)
            .map(|((application, service), name)| ServiceClass {
                id: service.id.clone(),
                name,
                plan_id: format!("{}-plan-{PLAN_NAME}", service.id),
                bindable: service.api_entry().is_some(),
                application,
                service,
            })
            .collect();
        let applications = applications
            .into_iter()
            .map(|a| (a.name_any(), a))
            .collect();
        Self {
            classes,
            applications,
        }
    }

    /// The class of `service_id`; one the catalog does not list is a 400.
    pub fn class(&self, service_id: &str) -> Result<&ServiceClass, OsbError> {
        self.classes
            .iter()
            .find(|c| c.id == service_id)
            .ok_or_else(|| {
                OsbError::BadRequest(format!("service_id {service_id} is not in the catalog"))
            })
    }

    /// The OSB catalog document; with a namespace's mappings, only the classes
    /// they enable.
    pub fn to_osb(&self, mappings: Option<&[ApplicationMapping]>) -> Value {
        let services: Vec<Value> = self
            .classes
            .iter()
            .filter(|class| mappings.is_none_or(|m| m.iter().any(|m| class.enabled_by(m))))
            .filter_map(|class| {
                self.applications
                    .get(&class.application)
                    .map(|app| class.to_osb(app))
            })
            .collect();
        json!({ "services": services })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const EVENTS_ONLY: &str = "events-only";
    pub const BINDABLE: &str = "bindable";

    /// The Application `shop` with an events-only service and one with an API.
    pub fn shop() -> Application {
        serde_json::from_value(json!({
            "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop"},
            "spec": {"providerDisplayName": "Shop Inc", "services": [
                {"id": EVENTS_ONLY, "displayName": "Orders", "entries": [{"type": "Events"}]},
                {"id": BINDABLE, "displayName": "Shipping", "providerDisplayName": "Carrier",
                 "entries": [{"type": "Events"}, {"type": "API", "gatewayUrl": "http://gw/shipping"}]},
                {"id": "api-only", "displayName": "Billing", "entries": [{"type": "API"}]},
            ]},
        }))
        .expect("an Application")
    }

    /// The mapping of `shop` into `namespace`, enabling `services` (all when empty).
    pub fn mapping(namespace: &str, services: &[&str]) -> ApplicationMapping {
        let services: Vec<Value> = services.iter().map(|id| json!({"id": id})).collect();
        serde_json::from_value(json!({
            "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
            "kind": "ApplicationMapping",
            "metadata": {"name": "shop", "namespace": namespace},
            "spec": {"services": services},
        }))
        .expect("a mapping")
    }

    /// Written around the resource API (straight to a Kubernetes API server,
    /// or two creates racing), two Applications may claim one id: the class
    /// stays with the older, whichever is listed first.
    #[test]
    fn a_service_id_claimed_twice_stays_with_the_older_application() {
        let stamped = |name: &str, seconds: i64| {
            let mut application = shop();
            application.metadata.name = Some(name.to_string());
            application.metadata.creation_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::from_second(seconds).expect("a time"),
                ));
            application
        };
        for applications in [
            vec![stamped("shop", 1), stamped("copycat", 2)],
            vec![stamped("copycat", 2), stamped("shop", 1)],
        ] {
            let catalog = Catalog::of(applications);
            assert_eq!(catalog.classes.len(), 2, "ids stay unique");
            assert!(catalog.classes.iter().all(|c| c.application == "shop"));
        }
    }

    /// A display name may end in what another class's suffix would be; the
    /// names still come out unique, whatever order the services are in.
    #[test]
    fn class_names_are_unique_even_when_a_display_name_looks_suffixed() {
        let lookalike = format!("Order Service {}", &sha256_hex("dup-a1")[..6]);
        let services = [
            ("dup-a1", "Order Service"),
            ("dup-a2", "Order Service"),
            ("dup-c", lookalike.as_str()),
        ];
        let application = |order: &[usize]| -> Application {
            let services: Vec<Value> = order
                .iter()
                .map(|&i| json!({"id": services[i].0, "displayName": services[i].1, "entries": [{"type": "Events"}]}))
                .collect();
            serde_json::from_value(json!({
                "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "dups"},
                "spec": {"services": services},
            }))
            .expect("an Application")
        };
        let mut first: Option<BTreeMap<String, String>> = None;
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let catalog = Catalog::of(vec![application(&order)]);
            let names: BTreeMap<String, String> = catalog
                .classes
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect();
            let distinct: HashSet<&String> = names.values().collect();
            assert_eq!(distinct.len(), 3, "{names:?}");
            assert!(names.values().all(|n| n.starts_with("order-service-")));
            match &first {
                None => first = Some(names),
                Some(first) => assert_eq!(first, &names, "independent of order"),
            }
        }
    }

    #[test]
    fn names_are_cli_friendly() {
        assert_eq!(cli_name("Order Service (v1)"), "order-service-v1");
        assert_eq!(cli_name("  ***"), "events");
    }

    #[test]
    fn a_class_per_service_with_events_and_its_plan_checked() {
        let catalog = Catalog::of(vec![shop()]);
        let ids: Vec<&str> = catalog.classes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, [EVENTS_ONLY, BINDABLE]);
        assert_eq!(
            catalog
                .class("api-only")
                .expect_err("no events")
                .to_string(),
            "service_id api-only is not in the catalog"
        );
        let class = catalog.class(BINDABLE).expect("listed");
        assert!(class.check_plan("bindable-plan-default").is_ok());
        assert_eq!(
            class
                .check_plan("gold")
                .expect_err("other plan")
                .to_string(),
            "plan_id gold is not a plan of service bindable (its plan is bindable-plan-default)"
        );
    }

    #[test]
    fn only_a_class_with_an_api_entry_is_bindable() {
        let catalog = Catalog::of(vec![shop()]);
        let api = catalog.class(BINDABLE).and_then(|c| c.api_to_bind());
        assert_eq!(
            api.expect("bindable").gateway_url.as_deref(),
            Some("http://gw/shipping")
        );
        let refusal = catalog.class(EVENTS_ONLY).and_then(|c| c.api_to_bind());
        assert!(
            refusal
                .expect_err("events only")
                .to_string()
                .contains("not bindable"),
        );
    }

    #[test]
    fn a_class_is_provisioned_where_its_applications_mapping_enables_it() {
        let catalog = Catalog::of(vec![shop()]);
        let class = catalog.class(EVENTS_ONLY).expect("listed");
        let mut other_application = mapping("team-a", &[]);
        other_application.metadata.name = Some("other".into());
        let cases = [
            (Some(mapping("team-a", &[])), true),
            (Some(mapping("team-a", &[EVENTS_ONLY])), true),
            (Some(mapping("team-a", &[BINDABLE])), false),
            (Some(other_application), false),
            (None, false),
        ];
        for (mapping, enabled) in cases {
            let checked = class.check_enabled(mapping.as_ref(), "team-a");
            assert_eq!(checked.is_ok(), enabled, "{mapping:?}");
        }
        let refusal = class.check_enabled(None, "team-a").expect_err("no mapping");
        assert!(
            refusal
                .to_string()
                .contains("create an ApplicationMapping team-a/shop"),
            "{refusal}"
        );
    }

    #[test]
    fn the_provider_is_the_services_else_the_applications() {
        let catalog = Catalog::of(vec![shop()]);
        let provider = |id: &str| {
            let class = catalog.class(id).expect("listed");
            class.to_osb(&shop())["metadata"]["providerDisplayName"].clone()
        };
        assert_eq!(provider(BINDABLE), "Carrier");
        assert_eq!(provider(EVENTS_ONLY), "Shop Inc");
        let mut anonymous = shop();
        anonymous.spec.provider_display_name = None;
        let class = catalog.class(EVENTS_ONLY).expect("listed");
        assert_eq!(
            class.to_osb(&anonymous)["metadata"]["providerDisplayName"],
            ""
        );
    }
}
