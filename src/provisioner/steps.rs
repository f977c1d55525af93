//! The steps of each operation. Every step is idempotent: it looks at what exists,
//! does what is missing, and says Done, Wait (something is not ready yet) or Fail.
//!
//! Provision: 1 channel-ready → 2 label-namespace → 3 broker-ready → 4 subscription
//! → 5 subscription-ready. Steps 2–4 hold the namespace's lock, so a concurrent
//! deprovision's clean-up cannot remove the label or Broker in between.
//! Update: 1 apply-parameters → 2 subscription-ready. Deprovision: 1 release-subscription → 2
//! clean-namespace (under the namespace's lock): when no other event instance is
//! left in the namespace, remove the label and Broker that meshbroker created.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;

use super::names::subscription_name;
use super::runner::{FIRST_DELAY, LONGEST_DELAY, Progress, Stop, run_step};
use super::service::Inner;
use crate::resources::{
    Application, Broker, Channel, Conditions, DeliverySpec, Destination, KReference, Operation,
    OperationKind, ServiceInstance, Subscription, SubscriptionSpec, labels,
};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError};

const DEFAULT_BROKER: &str = "default";

/// What the steps of one operation share.
pub struct Steps {
    inner: Arc<Inner>,
    record: String,
    operation: String,
    instance_id: String,
    service_id: String,
    application: String,
    namespace: String,
    parameters: Option<serde_json::Value>,
    /// When a synchronous request's answer is due (the operation's deadline).
    answer_due: Option<Instant>,
}

impl Steps {
    pub fn new(inner: Arc<Inner>, instance: &ServiceInstance, operation: &Operation) -> Self {
        Self {
            inner,
            record: instance.metadata.name.clone().unwrap_or_default(),
            operation: operation.id.clone(),
            instance_id: instance.spec.instance_id.clone(),
            service_id: instance.spec.service_id.clone(),
            application: instance.spec.application.clone(),
            namespace: instance.spec.namespace.clone(),
            parameters: instance.spec.parameters.clone(),
            answer_due: operation.time_left().map(|left| Instant::now() + left),
        }
    }

    /// When a step that has waited since now gives up, and the words for why: the
    /// operation timeout, or the end of a synchronous request's wait if sooner.
    pub fn give_up_at(&self) -> (Instant, String) {
        let timeout = self.inner.settings.operation_timeout;
        let timed_out = Instant::now() + timeout;
        match self.answer_due {
            Some(due) if due < timed_out => (
                due,
                "did not finish within the synchronous wait (provision, update or deprovision with accepts_incomplete=true to let it take longer)".into(),
            ),
            _ => (timed_out, format!("gave up after {}s", timeout.as_secs())),
        }
    }

    pub fn shutdown(&self) -> Shutdown {
        self.inner.shutdown.clone()
    }

    /// Writes progress into the operation's description; a failure to record is
    /// logged, not fatal: the step itself went fine.
    pub async fn record(&self, description: &str, attempts: u32) {
        let operation = self.operation.clone();
        let result = self
            .inner
            .store
            .modify::<ServiceInstance, _>(None, &self.record, |instance| {
                let status = instance.status.get_or_insert_with(Default::default);
                match status.operations.iter_mut().find(|o| o.id == operation) {
                    Some(op) if op.description != description || op.attempts != attempts => {
                        op.description = description.to_string();
                        op.attempts = attempts;
                        true
                    }
                    _ => false,
                }
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(instance_id = %self.instance_id, %error, "cannot record operation progress");
        }
        tracing::info!(instance_id = %self.instance_id, operation = %self.operation, "{description}");
    }

    fn integration_namespace(&self) -> &str {
        &self.inner.settings.integration_namespace
    }

    async fn lock_namespace(&self) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .inner
            .namespace_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(self.namespace.clone())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// What an operation waiting for `object` says: who has to report it Ready,
    /// and what its Ready condition says so far.
    fn not_ready(&self, object: &str, status: &impl Conditions) -> String {
        let why = status
            .condition("Ready")
            .map(|c| {
                let detail = c.message.as_deref().or(c.reason.as_deref());
                format!(
                    "Ready is {:?}: {}",
                    c.status,
                    detail.unwrap_or("no reason given")
                )
            })
            .unwrap_or_else(|| "no Ready condition yet".into());
        format!(
            "waiting for {} to report {object} Ready ({why})",
            self.inner.settings.mesh_served_by
        )
    }

    fn subscription_name(&self) -> String {
        subscription_name(&self.application, &self.namespace)
    }
}

/// Waits, reading only, until what a new operation would wait on before its first
/// write is ready, or until `until`; then says what it still waits for. For
/// provision and update that is the Application's Channel (a new Application's
/// Channel becomes ready moments after it is registered; one meshbroker cannot
/// serve, never). Deprovisioning waits on nothing.
pub async fn first_wait(
    inner: Arc<Inner>,
    instance: &ServiceInstance,
    operation: &Operation,
    until: Instant,
) -> Result<Option<String>, StoreError> {
    if operation.kind == OperationKind::Deprovision {
        return Ok(None);
    }
    let steps = Steps::new(inner, instance, operation);
    let mut delay = FIRST_DELAY;
    loop {
        match channel_ready(&steps).await? {
            Progress::Wait(reason) => {
                let now = Instant::now();
                if now >= until {
                    return Ok(Some(reason));
                }
                tokio::time::sleep(delay.min(until - now)).await;
                delay = (delay * 2).min(LONGEST_DELAY);
            }
            // A step that fails makes the operation fail at once: that is an answer too.
            Progress::Done | Progress::Fail(_) => return Ok(None),
        }
    }
}

pub async fn provision(steps: &Steps) -> Result<(), Stop> {
    run_step(steps, 1, 5, "channel-ready", || channel_ready(steps)).await?;
    let guard = steps.lock_namespace().await;
    run_step(steps, 2, 5, "label-namespace", || label_namespace(steps)).await?;
    run_step(steps, 3, 5, "broker-ready", || broker_ready(steps)).await?;
    run_step(steps, 4, 5, "subscription", || {
        ensure_subscription(steps, None)
    })
    .await?;
    drop(guard);
    run_step(steps, 5, 5, "subscription-ready", || {
        subscription_ready(steps)
    })
    .await
}

pub async fn update(steps: &Steps, request: Option<&serde_json::Value>) -> Result<(), Stop> {
    let parameters = request
        .and_then(|r| r.get("parameters"))
        .filter(|p| !p.is_null());
    run_step(steps, 1, 2, "apply-parameters", || {
        ensure_subscription(steps, Some(parameters))
    })
    .await?;
    run_step(steps, 2, 2, "subscription-ready", || {
        subscription_ready(steps)
    })
    .await
}

pub async fn deprovision(steps: &Steps) -> Result<(), Stop> {
    run_step(steps, 1, 2, "release-subscription", || {
        release_subscription(steps)
    })
    .await?;
    let _guard = steps.lock_namespace().await;
    run_step(steps, 2, 2, "clean-namespace", || clean_namespace(steps)).await
}

async fn channel_ready(steps: &Steps) -> Result<Progress, StoreError> {
    let store = &steps.inner.store;
    let Some(application) = store.get::<Application>(None, &steps.application).await? else {
        return Ok(Progress::Wait(format!(
            "Application {} is not registered",
            steps.application
        )));
    };
    if !application
        .spec
        .services
        .iter()
        .any(|s| s.id == steps.service_id)
    {
        return Ok(Progress::Fail(format!(
            "Application {} no longer offers service {}",
            steps.application, steps.service_id
        )));
    }
    let namespace = steps.integration_namespace();
    let Some(channel) = store
        .get::<Channel>(Some(namespace), &steps.application)
        .await?
    else {
        return Ok(Progress::Wait(format!(
            "Channel {namespace}/{} does not exist yet",
            steps.application
        )));
    };
    let status = channel.status.unwrap_or_default();
    if status.is_ready() && status.address.url.is_some() {
        return Ok(Progress::Done);
    }
    Ok(Progress::Wait(steps.not_ready(
        &format!("Channel {namespace}/{}", steps.application),
        &status,
    )))
}

async fn label_namespace(steps: &Steps) -> Result<Progress, StoreError> {
    let changed = steps
        .inner
        .store
        .modify::<Namespace, _>(None, &steps.namespace, |namespace| {
            let meta = &mut namespace.metadata;
            let labels_map = meta.labels.get_or_insert_with(BTreeMap::new);
            if labels_map.get(labels::INJECTION).map(String::as_str)
                == Some(labels::INJECTION_ENABLED)
            {
                return false;
            }
            labels_map.insert(
                labels::INJECTION.to_string(),
                labels::INJECTION_ENABLED.to_string(),
            );
            meta.annotations.get_or_insert_with(BTreeMap::new).insert(
                labels::LABELLED_BY_MESHBROKER.to_string(),
                "true".to_string(),
            );
            true
        })
        .await?;
    Ok(match changed {
        Some(_) => Progress::Done,
        None => Progress::Wait(format!("namespace {} does not exist", steps.namespace)),
    })
}

async fn broker_ready(steps: &Steps) -> Result<Progress, StoreError> {
    let broker = steps
        .inner
        .store
        .get::<Broker>(Some(&steps.namespace), DEFAULT_BROKER)
        .await?;
    let Some(broker) = broker else {
        return Ok(Progress::Wait(format!(
            "Broker {}/{DEFAULT_BROKER} is not created yet",
            steps.namespace
        )));
    };
    let status = broker.status.unwrap_or_default();
    if status.is_ready() && status.address.url.is_some() {
        return Ok(Progress::Done);
    }
    Ok(Progress::Wait(steps.not_ready(
        &format!("Broker {}/{DEFAULT_BROKER}", steps.namespace),
        &status,
    )))
}

fn owners_of(subscription: &Subscription) -> BTreeSet<String> {
    subscription
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SUBSCRIPTION_OWNERS))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

fn set_owners(subscription: &mut Subscription, owners: &BTreeSet<String>) {
    let text = serde_json::to_string(owners).unwrap_or_else(|_| "[]".into());
    subscription
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(labels::SUBSCRIPTION_OWNERS.to_string(), text);
}

/// Delivery options from the instance parameters (validated against the plan schema).
fn delivery_from(parameters: Option<&serde_json::Value>) -> Option<DeliverySpec> {
    parameters
        .and_then(|p| p.get("delivery"))
        .and_then(|d| serde_json::from_value(d.clone()).ok())
}

/// Makes the (Application, namespace) Subscription exist, list this instance among
/// its owners and point at the namespace's Broker. `parameters` (for updates) also
/// sets its delivery; on provision the instance's own parameters do.
async fn ensure_subscription(
    steps: &Steps,
    parameters: Option<Option<&serde_json::Value>>,
) -> Result<Progress, StoreError> {
    let store = &steps.inner.store;
    let namespace = steps.integration_namespace();
    let name = steps.subscription_name();
    let delivery = delivery_from(parameters.unwrap_or(steps.parameters.as_ref()));
    let spec = SubscriptionSpec {
        channel: KReference {
            api_version: "messaging.knative.dev/v1".into(),
            kind: "Channel".into(),
            name: steps.application.clone(),
            namespace: None,
        },
        subscriber: Destination {
            reference: Some(KReference {
                api_version: "eventing.knative.dev/v1".into(),
                kind: "Broker".into(),
                name: DEFAULT_BROKER.into(),
                namespace: Some(steps.namespace.clone()),
            }),
            uri: None,
        },
        reply: None,
        delivery: delivery.clone(),
    };
    let set_delivery = parameters.is_some() || delivery.is_some();
    let updated = store
        .modify::<Subscription, _>(Some(namespace), &name, |subscription| {
            let mut owners = owners_of(subscription);
            let mut changed = owners.insert(steps.instance_id.clone());
            set_owners(subscription, &owners);
            if subscription.spec.channel != spec.channel
                || subscription.spec.subscriber != spec.subscriber
            {
                subscription.spec.channel = spec.channel.clone();
                subscription.spec.subscriber = spec.subscriber.clone();
                changed = true;
            }
            if set_delivery && subscription.spec.delivery != delivery {
                subscription.spec.delivery = delivery.clone();
                changed = true;
            }
            changed
        })
        .await?;
    if updated.is_some() {
        return Ok(Progress::Done);
    }
    let mut subscription = Subscription::new(&name, spec);
    subscription.metadata.namespace = Some(namespace.to_string());
    subscription.metadata.labels = Some(BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (
            labels::APPLICATION_NAME.to_string(),
            steps.application.clone(),
        ),
        (
            labels::TARGET_NAMESPACE.to_string(),
            steps.namespace.clone(),
        ),
    ]));
    set_owners(
        &mut subscription,
        &BTreeSet::from([steps.instance_id.clone()]),
    );
    match store.create(&subscription).await {
        Ok(_) => Ok(Progress::Done),
        // Another instance created it first: add ourselves on the next attempt.
        Err(StoreError::AlreadyExists { .. }) => Ok(Progress::Wait(
            "the Subscription was created concurrently".into(),
        )),
        Err(error) => Err(error),
    }
}

async fn subscription_ready(steps: &Steps) -> Result<Progress, StoreError> {
    let namespace = steps.integration_namespace();
    let name = steps.subscription_name();
    let Some(subscription) = steps
        .inner
        .store
        .get::<Subscription>(Some(namespace), &name)
        .await?
    else {
        return Ok(Progress::Fail(format!(
            "Subscription {namespace}/{name} disappeared"
        )));
    };
    let status = subscription.status.unwrap_or_default();
    if status.is_ready() {
        return Ok(Progress::Done);
    }
    Ok(Progress::Wait(steps.not_ready(
        &format!("Subscription {namespace}/{name}"),
        &status,
    )))
}

async fn release_subscription(steps: &Steps) -> Result<Progress, StoreError> {
    let store = &steps.inner.store;
    let namespace = steps.integration_namespace();
    let name = steps.subscription_name();
    let mut now_unowned = false;
    let released = store
        .modify::<Subscription, _>(Some(namespace), &name, |subscription| {
            let mut owners = owners_of(subscription);
            let removed = owners.remove(&steps.instance_id);
            now_unowned = owners.is_empty();
            set_owners(subscription, &owners);
            removed
        })
        .await?;
    let Some(unowned) = released.filter(|_| now_unowned) else {
        return Ok(Progress::Done);
    };
    // This step runs outside the namespace's lock, so another instance's provision
    // may make itself an owner after the write above: delete only the version seen
    // without owners. If it moved on, the next attempt decides again.
    match store.delete_unchanged(&unowned).await {
        Ok(_) => {
            tracing::info!(application = %steps.application, namespace = %steps.namespace, "last owner gone: Subscription deleted");
            Ok(Progress::Done)
        }
        Err(StoreError::Conflict { .. }) => Ok(Progress::Wait(
            "the Subscription changed while its last owner left".into(),
        )),
        Err(error) => Err(error),
    }
}

async fn clean_namespace(steps: &Steps) -> Result<Progress, StoreError> {
    let store = &steps.inner.store;
    let instances: Vec<ServiceInstance> = store.list(None, &LabelSelector::everything()).await?;
    let remaining = instances
        .iter()
        .filter(|i| {
            i.spec.namespace == steps.namespace
                && i.is_live()
                && i.spec.instance_id != steps.instance_id
        })
        .count();
    if remaining > 0 {
        steps
            .record(
                &format!(
                    "namespace {} keeps its label and Broker: {remaining} event instance(s) remain",
                    steps.namespace
                ),
                1,
            )
            .await;
        return Ok(Progress::Done);
    }
    let mut label_remains = false;
    store
        .modify::<Namespace, _>(None, &steps.namespace, |namespace| {
            let meta = &mut namespace.metadata;
            let ours = meta
                .annotations
                .as_mut()
                .and_then(|a| a.remove(labels::LABELLED_BY_MESHBROKER))
                .is_some();
            if ours {
                if let Some(l) = meta.labels.as_mut() {
                    l.remove(labels::INJECTION);
                }
            } else {
                label_remains = meta
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(labels::INJECTION));
            }
            ours
        })
        .await?;
    // A label a person set still asks for a Broker; the injection would recreate it.
    if !label_remains
        && let Some(broker) = store
            .get::<Broker>(Some(&steps.namespace), DEFAULT_BROKER)
            .await?
        && broker
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::MANAGED_BY))
            .map(String::as_str)
            == Some(labels::MANAGED_BY_VALUE)
    {
        store
            .delete::<Broker>(Some(&steps.namespace), DEFAULT_BROKER)
            .await?;
        tracing::info!(namespace = %steps.namespace, "no event instances left: label and Broker removed");
    }
    Ok(Progress::Done)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::core::DynamicObject;

    use super::*;
    use crate::provisioner::{Provisioner, ProvisionerSettings};
    use crate::resources::{KindSpec, ServiceInstanceSpec};
    use crate::store::{EmbeddedStore, ObjectList, Store, TypedStore, WatchStream};

    const INTEGRATION: &str = "kyma-integration";

    /// The embedded store, where another instance's provision makes itself an owner
    /// of the Subscription right after the first write to it: the moment between the
    /// last owner leaving and the Subscription's delete, made to happen every time.
    struct OwnerSlipsIn {
        store: EmbeddedStore,
        pending: Mutex<Option<&'static str>>,
    }

    #[async_trait]
    impl Store for OwnerSlipsIn {
        async fn get(
            &self,
            kind: &'static KindSpec,
            namespace: Option<&str>,
            name: &str,
        ) -> Result<DynamicObject, StoreError> {
            self.store.get(kind, namespace, name).await
        }

        async fn list(
            &self,
            kind: &'static KindSpec,
            namespace: Option<&str>,
            selector: &LabelSelector,
        ) -> Result<ObjectList, StoreError> {
            self.store.list(kind, namespace, selector).await
        }

        async fn create(
            &self,
            kind: &'static KindSpec,
            object: DynamicObject,
        ) -> Result<DynamicObject, StoreError> {
            self.store.create(kind, object).await
        }

        async fn replace(
            &self,
            kind: &'static KindSpec,
            object: DynamicObject,
        ) -> Result<DynamicObject, StoreError> {
            let written = self.store.replace(kind, object).await?;
            let owner = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let Some(owner) = owner else {
                return Ok(written);
            };
            let mut slipped = written.clone();
            let annotations = slipped.metadata.annotations.get_or_insert_default();
            let mut owners: BTreeSet<String> = annotations
                .get(labels::SUBSCRIPTION_OWNERS)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            owners.insert(owner.to_string());
            let text = serde_json::to_string(&owners).map_err(StoreError::internal)?;
            annotations.insert(labels::SUBSCRIPTION_OWNERS.to_string(), text);
            self.store.replace(kind, slipped).await?;
            Ok(written)
        }

        async fn delete(
            &self,
            kind: &'static KindSpec,
            namespace: Option<&str>,
            name: &str,
            resource_version: Option<&str>,
        ) -> Result<DynamicObject, StoreError> {
            self.store
                .delete(kind, namespace, name, resource_version)
                .await
        }

        async fn watch(
            &self,
            kind: &'static KindSpec,
            namespace: Option<&str>,
            selector: &LabelSelector,
            since: Option<&str>,
        ) -> Result<WatchStream, StoreError> {
            self.store.watch(kind, namespace, selector, since).await
        }
    }

    fn subscription(owners: &[&str]) -> Subscription {
        let mut subscription = Subscription::new(
            "app.team-a",
            SubscriptionSpec {
                channel: KReference {
                    api_version: "messaging.knative.dev/v1".into(),
                    kind: "Channel".into(),
                    name: "app".into(),
                    namespace: None,
                },
                subscriber: Destination {
                    reference: None,
                    uri: Some("http://broker.example/".into()),
                },
                reply: None,
                delivery: None,
            },
        );
        subscription.metadata.namespace = Some(INTEGRATION.into());
        let owners: BTreeSet<String> = owners.iter().map(|o| o.to_string()).collect();
        set_owners(&mut subscription, &owners);
        subscription
    }

    #[tokio::test]
    async fn the_last_owner_leaving_never_deletes_a_subscription_another_instance_joined() {
        let dir = tempfile::tempdir().expect("temp dir");
        let interleaved = Arc::new(OwnerSlipsIn {
            store: EmbeddedStore::open(&dir.path().join("store.db")).expect("store"),
            pending: Mutex::new(None),
        });
        let store = TypedStore::new(interleaved.clone() as Arc<dyn Store>);
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(INTEGRATION.into());
        store.create(&namespace).await.expect("namespace");
        store
            .create(&subscription(&["a"]))
            .await
            .expect("subscription");
        let (_stop, shutdown) = crate::shutdown::Shutdown::new();
        let provisioner = Provisioner::new(
            store.clone(),
            ProvisionerSettings {
                integration_namespace: INTEGRATION.into(),
                operation_timeout: std::time::Duration::from_secs(60),
                deprovisioned_retention: std::time::Duration::from_secs(60),
                mesh_served_by: "meshbroker",
            },
            crate::telemetry::Metrics::new(),
            shutdown,
        );
        let leaving = ServiceInstance::new(
            "a",
            ServiceInstanceSpec {
                instance_id: "a".into(),
                application: "app".into(),
                namespace: "team-a".into(),
                ..Default::default()
            },
        );
        let steps = Steps::new(provisioner.inner.clone(), &leaving, &Operation::default());
        *interleaved
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some("b");

        let first = release_subscription(&steps).await.expect("store works");
        assert!(
            matches!(first, Progress::Wait(_)),
            "the Subscription moved on: decide again"
        );
        let kept: Subscription = store
            .get(Some(INTEGRATION), "app.team-a")
            .await
            .expect("get")
            .expect("b still needs the Subscription");
        assert_eq!(owners_of(&kept), BTreeSet::from(["b".to_string()]));
        let again = release_subscription(&steps).await.expect("store works");
        assert!(matches!(again, Progress::Done));
        assert!(
            store
                .get::<Subscription>(Some(INTEGRATION), "app.team-a")
                .await
                .expect("get")
                .is_some(),
            "b is still an owner"
        );
    }
}
