//! The EventType controller: every event type a provisioned instance's
//! service declares becomes an `eventing.knative.dev/v1beta2` EventType in the
//! instance's namespace, referencing its Broker `default`, so `kn eventtype
//! list` and Knative UIs show the catalog. Kept in step with the Application
//! (types added, changed or dropped) and the instance (deprovisioned: gone);
//! only EventTypes meshbroker made (labelled with their instance) are touched.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kube::core::ObjectMeta;
use sha2::{Digest, Sha256};

use super::applications::managed_labels;
use super::runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use crate::resources::{
    Application, ConditionStatus, Conditions, EventTypeSpec, EventTypeStatus, KReference,
    KnativeEventType, ServiceInstance, kind_of, labels,
};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError, TypedStore};

/// How often an instance whose EventTypes another instance holds looks again.
const TAKE_OVER_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

struct EventTypeController {
    store: TypedStore,
}

pub fn start(store: TypedStore, shutdown: Shutdown) {
    let lookup = store.clone();
    let instances_of = move |application: kube::core::DynamicObject| {
        let store = lookup.clone();
        async move {
            let name = application.metadata.name.unwrap_or_default();
            let instances = store
                .list::<ServiceInstance>(None, &LabelSelector::everything())
                .await
                .unwrap_or_default();
            instances
                .iter()
                .filter(|i| i.spec.application == name)
                .filter_map(|i| i.metadata.name.as_deref().map(ObjectKey::cluster))
                .collect()
        }
    };
    let by_instance_label = |object: &kube::core::DynamicObject| {
        object
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::INSTANCE))
            .map(|instance| vec![ObjectKey::cluster(instance)])
            .unwrap_or_default()
    };
    let sources = vec![
        Source::primary(kind_of::<ServiceInstance>()),
        Source::mapped_async(kind_of::<Application>(), instances_of),
        Source::mapped(kind_of::<KnativeEventType>(), by_instance_label),
    ];
    let raw = store.raw().clone();
    spawn_controller(
        "eventtypes",
        raw,
        sources,
        Arc::new(EventTypeController { store }),
        shutdown,
    );
}

#[async_trait]
impl Reconciler for EventTypeController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let instance = self.store.get::<ServiceInstance>(None, &key.name).await?;
        let wanted = match &instance {
            Some(instance) => self.wanted(instance).await?,
            None => BTreeMap::new(),
        };
        let selector = LabelSelector::equals(labels::INSTANCE, &key.name);
        let existing = self.store.list::<KnativeEventType>(None, &selector).await?;
        for stale in &existing {
            let name = stale.metadata.name.as_deref().unwrap_or_default();
            if !wanted.contains_key(name) {
                self.store.delete_unchanged(stale).await?;
            }
        }
        let mut held_by_another = false;
        for (name, desired) in wanted {
            let current = existing
                .iter()
                .find(|e| e.metadata.name.as_deref() == Some(name.as_str()));
            match current {
                Some(current)
                    if current.spec == desired.spec && current.status == desired.status => {}
                Some(current) => {
                    let mut updated = current.clone();
                    updated.spec = desired.spec;
                    updated.status = desired.status;
                    self.store.replace(&updated).await?;
                }
                None => match self.store.create(&desired).await {
                    // Another instance of the same class in this namespace
                    // stands for it; this one takes it over once that goes.
                    Err(StoreError::AlreadyExists { .. }) => held_by_another = true,
                    created => {
                        created?;
                    }
                },
            }
        }
        Ok(if held_by_another {
            Requeue::After(TAKE_OVER_EVERY)
        } else {
            Requeue::Done
        })
    }
}

impl EventTypeController {
    /// By name, the EventTypes a live instance stands for.
    async fn wanted(
        &self,
        instance: &ServiceInstance,
    ) -> Result<BTreeMap<String, KnativeEventType>, StoreError> {
        let mut wanted = BTreeMap::new();
        let live = instance
            .status
            .as_ref()
            .is_some_and(|s| s.provisioned && !s.deleted);
        let application = &instance.spec.application;
        let Some(found) = self.store.get::<Application>(None, application).await? else {
            return Ok(wanted);
        };
        let service = found
            .spec
            .services
            .iter()
            .find(|s| s.id == instance.spec.service_id);
        let (Some(service), true) = (service, live) else {
            return Ok(wanted);
        };
        let owner = instance.metadata.name.clone().unwrap_or_default();
        let namespace = &instance.spec.namespace;
        for event_type in service.event_types() {
            let name = object_name(application, &event_type.name, &event_type.version);
            let mut labels = managed_labels(Some(application));
            labels.insert(labels::INSTANCE.into(), owner.clone());
            let mut status = EventTypeStatus::default();
            status.set_condition(
                "Ready",
                ConditionStatus::True,
                "Provisioned",
                format!(
                    "declared by service {:?} of Application {application:?}",
                    service.display_name
                ),
            );
            let schema_data = event_type
                .payload_schema
                .as_ref()
                .and_then(|schema| serde_json::to_string(schema).ok());
            let description = format!(
                "{} {} ({}): {}",
                event_type.name, event_type.version, service.display_name, service.description
            );
            let spec = EventTypeSpec {
                type_: event_type.name.clone(),
                source: Some(application.clone()),
                schema_data,
                description: description.trim_end_matches([' ', ':']).to_string(),
                reference: Some(KReference {
                    api_version: "eventing.knative.dev/v1".into(),
                    kind: "Broker".into(),
                    name: "default".into(),
                    namespace: None,
                }),
            };
            let mut object = KnativeEventType::new(&name, spec);
            object.metadata = ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(labels),
                ..Default::default()
            };
            object.status = Some(status);
            wanted.insert(name, object);
        }
        Ok(wanted)
    }
}

/// `<application>-<type>-<version>` as a name: lowercase, dots and anything
/// else a name cannot hold as dashes; a long one shortened with a digest so
/// two never meet.
fn object_name(application: &str, type_: &str, version: &str) -> String {
    let written = format!("{application}-{type_}-{version}");
    let mut name: String = written
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    if name.len() > 63 {
        let digest = crate::ids::hex(&Sha256::digest(written.as_bytes())[..4]);
        name.truncate(54);
        name = format!("{}-{digest}", name.trim_end_matches('-'));
    }
    name.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_long_ones_stay_apart() {
        assert_eq!(
            object_name("commerce", "order.created", "v1"),
            "commerce-order-created-v1"
        );
        let long = "x".repeat(80);
        let a = object_name("commerce", &format!("{long}.a"), "v1");
        let b = object_name("commerce", &format!("{long}.b"), "v1");
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert!(crate::resources::is_valid_name(&a), "{a}");
    }
}
