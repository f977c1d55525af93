//! The steps of each operation, and the tables that order them. Every step is
//! idempotent: it looks at what exists, does what is missing, and says Done, Wait
//! (something is not ready yet) or Fail.
//!
//! `PROVISION` is the provisioning in order; deprovisioning runs the undos of its
//! steps, last first; `UPDATE` is an update. The label-to-subscription steps hold
//! the namespace's lock, so a concurrent deprovision's clean-up cannot remove the
//! label or Broker in between. Their numbers ("step 2/5") come from the tables;
//! the README's Provisioning section lists them as the tables do (tested below).
//!
//! Several steps wait on controllers rather than on anything the provisioner
//! writes: each step's function says which, and where it lives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

use super::backoff::Backoff;
use super::context::Context;
use super::job::Job;
use super::plan::{Plan, Progress, Step};
use super::shared_delivery::{Claims, delivery_from};
use crate::resources::{
    Application, Broker, Channel, Conditions, DeliverySpec, Destination, KReference, Operation,
    OperationKind, ServiceInstance, Subscription, SubscriptionSpec, labels,
};
use crate::store::{LabelSelector, StoreError};

const CHANNEL_READY: Step = Step {
    name: "channel-ready",
    doc: "the Application's Channel in the integration namespace is Ready (a Channel that is not ready makes the step wait, not fail)",
    run: |job| Box::pin(channel_ready(job)),
    namespace_lock: false,
    undo: None,
};

const LABEL_NAMESPACE: Step = Step {
    name: "label-namespace",
    doc: "N gets `knative-eventing-injection=enabled` (and an annotation saying meshbroker set it)",
    run: |job| Box::pin(label_namespace(job)),
    namespace_lock: true,
    undo: Some(&CLEAN_NAMESPACE),
};

const BROKER_READY: Step = Step {
    name: "broker-ready",
    doc: "the injection controller's Broker `default` in N is Ready (N deleted meanwhile fails the operation at once; N deleted and made again is labelled again)",
    run: |job| Box::pin(broker_ready(job)),
    namespace_lock: true,
    // The injection controller made the Broker; clean-namespace takes it away.
    undo: None,
};

const SUBSCRIPTION: Step = Step {
    name: "subscription",
    doc: "Subscription `<application>.<N>` in the integration namespace points the Channel at N's Broker and lists this instance in its `meshbroker.io/instances` annotation. Two services of one Application share it: no duplicate deliveries. It carries the most patient of its instances' delivery options (the most retries, the longest backoff delay and timeout, exponential backoff if any asks for it)",
    run: |job| Box::pin(subscribe(job)),
    namespace_lock: true,
    undo: Some(&RELEASE_SUBSCRIPTION),
};

const SUBSCRIPTION_READY: Step = Step {
    name: "subscription-ready",
    doc: "the Subscription is Ready",
    run: |job| Box::pin(subscription_ready(job)),
    namespace_lock: false,
    undo: None,
};

const APPLY_PARAMETERS: Step = Step {
    name: "apply-parameters",
    doc: "the Subscription takes the delivery options of the new parameters, merged with those of the other instances it serves (the most patient of each option)",
    run: |job| Box::pin(apply_parameters(job)),
    // Under the lock, as every step that writes the Subscription's delivery: each
    // reads the other instances' claims and must write before another reads.
    namespace_lock: true,
    undo: None,
};

const RELEASE_SUBSCRIPTION: Step = Step {
    name: "release-subscription",
    doc: "the instance leaves the Subscription's owners, taking the delivery options it asked for with it, and the Subscription is deleted when none remain",
    run: |job| Box::pin(release_subscription(job)),
    // Under the lock, as `subscription` is: a deprovision takes the namespace
    // before it changes anything, so one that cannot get it in time fails
    // with nothing undone.
    namespace_lock: true,
    undo: None,
};

const CLEAN_NAMESPACE: Step = Step {
    name: "clean-namespace",
    doc: "when N has no event instance left, the label meshbroker set and the Broker it created are removed (a label a person set is kept, and with it the Broker)",
    run: |job| Box::pin(clean_namespace(job)),
    namespace_lock: true,
    undo: None,
};

/// Provisioning an Event ServiceClass into namespace N.
const PROVISION: &[Step] = &[
    CHANNEL_READY,
    LABEL_NAMESPACE,
    BROKER_READY,
    SUBSCRIPTION,
    SUBSCRIPTION_READY,
];

/// Updating an instance's parameters (its plan cannot change).
const UPDATE: &[Step] = &[APPLY_PARAMETERS, SUBSCRIPTION_READY];

/// The steps an operation of `kind` runs.
pub fn plan(kind: OperationKind) -> Plan {
    match kind {
        OperationKind::Provision => Plan::forward(PROVISION),
        OperationKind::Update => Plan::forward(UPDATE),
        OperationKind::Deprovision => Plan::undoing(PROVISION),
    }
}

/// Waits, reading only, until what a new operation would wait on before its first
/// write is ready, or until `until`; then says what it still waits for. For
/// provision and update that is the Application's Channel (a new Application's
/// Channel becomes ready moments after it is registered; one meshbroker cannot
/// serve, never). Deprovisioning waits on nothing.
pub async fn first_wait(
    context: Arc<Context>,
    instance: &ServiceInstance,
    operation: &Operation,
    until: Instant,
) -> Result<Option<String>, StoreError> {
    if operation.kind == OperationKind::Deprovision {
        return Ok(None);
    }
    let job = Job::new(context, instance, operation);
    let mut backoff = Backoff::default();
    loop {
        match channel_ready(&job).await? {
            Progress::Wait(reason) => {
                let now = Instant::now();
                if now >= until {
                    return Ok(Some(reason));
                }
                tokio::time::sleep(backoff.next_delay().min(until - now)).await;
            }
            // A step that fails makes the operation fail at once: that is an answer too.
            Progress::Done | Progress::Fail(_) => return Ok(None),
        }
    }
}

/// Waits on the Application controller (`controllers/applications.rs`), which
/// creates the Channel for a registered Application, and on whoever serves the
/// mesh to report it Ready: the Channel status controller
/// (`controllers/readiness/addressable.rs`), or Knative with `--dataplane knative`.
async fn channel_ready(job: &Job) -> Result<Progress, StoreError> {
    let store = job.store();
    let spec = job.spec();
    let Some(application) = store.get::<Application>(None, &spec.application).await? else {
        return Ok(Progress::Wait(format!(
            "Application {} is not registered",
            spec.application
        )));
    };
    if !application
        .spec
        .services
        .iter()
        .any(|s| s.id == spec.service_id)
    {
        return Ok(Progress::Fail(format!(
            "Application {} no longer offers service {}",
            spec.application, spec.service_id
        )));
    }
    let namespace = job.integration_namespace();
    let Some(channel) = store
        .get::<Channel>(Some(namespace), &spec.application)
        .await?
    else {
        return Ok(Progress::Wait(format!(
            "Channel {namespace}/{} does not exist yet",
            spec.application
        )));
    };
    // No status yet: nobody has reported on it, so it is not ready.
    let status = channel.status.unwrap_or_default();
    if status.is_ready() && status.address.url.is_some() {
        return Ok(Progress::Done);
    }
    Ok(Progress::Wait(job.not_ready(
        &format!("Channel {namespace}/{}", spec.application),
        &status,
    )))
}

/// Labels the namespace for the broker-injection controller
/// (`controllers/injection.rs`), which then creates its Broker `default`.
async fn label_namespace(job: &Job) -> Result<Progress, StoreError> {
    let target = &job.spec().namespace;
    let changed = job
        .store()
        .modify::<Namespace, _>(None, target, |namespace| {
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
        None => Progress::Wait(format!("namespace {target} does not exist")),
    })
}

/// Waits on the broker-injection controller (`controllers/injection.rs`) to
/// create the Broker the label asks for, and on whoever serves the mesh to report
/// it Ready: the Broker status controller (`controllers/readiness/addressable.rs`),
/// or Knative with `--dataplane knative`.
async fn broker_ready(job: &Job) -> Result<Progress, StoreError> {
    let namespace = &job.spec().namespace;
    let broker = job
        .store()
        .get::<Broker>(Some(namespace), Broker::DEFAULT_NAME)
        .await?;
    let Some(broker) = broker else {
        // Its label may have gone with the namespace (deleted, perhaps made
        // again): label it again, or fail now rather than wait out the
        // operation's timeout while the platform cannot deprovision.
        return Ok(match label_namespace(job).await? {
            Progress::Done => Progress::Wait(format!(
                "Broker {namespace}/{} is not created yet",
                Broker::DEFAULT_NAME
            )),
            _ => Progress::Fail(format!(
                "namespace {namespace} was deleted while the instance was provisioned"
            )),
        });
    };
    // No status yet: nobody has reported on it, so it is not ready.
    let class = (!broker.is_embedded_class())
        .then(|| broker.annotations().get(labels::BROKER_CLASS))
        .flatten()
        .cloned();
    let status = broker.status.unwrap_or_default();
    if status.is_ready() && status.address.url.is_some() {
        return Ok(Progress::Done);
    }
    let waiting = job.not_ready(
        &format!("Broker {namespace}/{}", Broker::DEFAULT_NAME),
        &status,
    );
    Ok(Progress::Wait(match class {
        // A Broker made before provisioning, of a class another
        // implementation serves: that one reports it, not meshbroker.
        Some(class) => format!(
            "{waiting}; it is of class {class:?}, which meshbroker does not serve: its own controller must make it Ready"
        ),
        None => waiting,
    }))
}

/// The instances a Subscription serves, from its owners annotation (none when it
/// has no annotation).
fn owners_of(subscription: &Subscription) -> Result<BTreeSet<String>, serde_json::Error> {
    match subscription
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SUBSCRIPTION_OWNERS))
    {
        Some(text) => serde_json::from_str(text),
        None => Ok(BTreeSet::new()),
    }
}

/// Why a step cannot go on with a Subscription whose owners it cannot read:
/// rewriting or deleting it could cut off the instances it serves.
fn unreadable_owners(namespace: &str, name: &str, error: &serde_json::Error) -> String {
    format!(
        "the owners of Subscription {namespace}/{name} cannot be read (annotation {}: {error})",
        labels::SUBSCRIPTION_OWNERS
    )
}

fn set_owners(subscription: &mut Subscription, owners: &BTreeSet<String>) {
    let text = serde_json::Value::from_iter(owners.iter().cloned()).to_string();
    subscription
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(labels::SUBSCRIPTION_OWNERS.to_string(), text);
}

async fn subscribe(job: &Job) -> Result<Progress, StoreError> {
    subscribe_claiming(job, job.spec().parameters.as_ref()).await
}

async fn apply_parameters(job: &Job) -> Result<Progress, StoreError> {
    subscribe_claiming(job, job.requested_parameters()).await
}

/// `ensure_subscription` with the delivery options of `parameters` as this
/// instance's claim.
async fn subscribe_claiming(
    job: &Job,
    parameters: Option<&serde_json::Value>,
) -> Result<Progress, StoreError> {
    match delivery_from(parameters) {
        Ok(delivery) => ensure_subscription(job, delivery).await,
        Err(error) => Ok(Progress::Fail(format!("parameters.delivery: {error}"))),
    }
}

/// What a failed update leaves behind: nothing it changed. OSB v2.17 (Updating a
/// Service Instance): with a 4xx or 5xx answer "the Service Broker MUST NOT apply
/// any of the requested changes". The record keeps the parameters it had (they
/// are replaced only on success), so the Subscription takes their claim back,
/// as provisioning made it. The caller holds the namespace's lock until the
/// failure is recorded.
pub async fn restore_parameters(job: &Job) -> Result<Progress, StoreError> {
    subscribe(job).await
}

/// Makes the (Application, namespace) Subscription exist, list this instance among
/// its owners, point at the namespace's Broker and carry the most patient of its
/// owners' delivery claims, this instance's being `own`.
async fn ensure_subscription(job: &Job, own: Option<DeliverySpec>) -> Result<Progress, StoreError> {
    let store = job.store();
    let claims = Claims::read(job, own).await?;
    let spec = job.spec();
    let namespace = job.integration_namespace();
    let name = job.subscription_name();
    let wanted = SubscriptionSpec {
        channel: KReference {
            api_version: "messaging.knative.dev/v1".into(),
            kind: "Channel".into(),
            name: spec.application.clone(),
            namespace: None,
        },
        subscriber: Destination {
            reference: Some(KReference {
                api_version: "eventing.knative.dev/v1".into(),
                kind: "Broker".into(),
                name: Broker::DEFAULT_NAME.into(),
                namespace: Some(spec.namespace.clone()),
            }),
            uri: None,
            ..Default::default()
        },
        reply: None,
        delivery: claims.for_owners(&BTreeSet::from([spec.instance_id.clone()])),
    };
    let mut unreadable = None;
    let updated = store
        .modify::<Subscription, _>(Some(namespace), &name, |subscription| {
            let mut owners = match owners_of(subscription) {
                Ok(owners) => owners,
                Err(error) => {
                    unreadable = Some(unreadable_owners(namespace, &name, &error));
                    return false;
                }
            };
            let mut changed = owners.insert(spec.instance_id.clone());
            set_owners(subscription, &owners);
            if subscription.spec.channel != wanted.channel
                || subscription.spec.subscriber != wanted.subscriber
            {
                subscription.spec.channel = wanted.channel.clone();
                subscription.spec.subscriber = wanted.subscriber.clone();
                changed = true;
            }
            let delivery = claims.for_owners(&owners);
            if subscription.spec.delivery != delivery {
                subscription.spec.delivery = delivery;
                changed = true;
            }
            changed
        })
        .await?;
    if let Some(reason) = unreadable {
        return Ok(Progress::Fail(reason));
    }
    if updated.is_some() {
        return Ok(Progress::Done);
    }
    let mut subscription = Subscription::new(&name, wanted);
    subscription.metadata.namespace = Some(namespace.to_string());
    subscription.metadata.labels = Some(BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (
            labels::APPLICATION_NAME.to_string(),
            spec.application.clone(),
        ),
        (labels::TARGET_NAMESPACE.to_string(), spec.namespace.clone()),
    ]));
    set_owners(
        &mut subscription,
        &BTreeSet::from([spec.instance_id.clone()]),
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

/// Waits on whoever serves the mesh to report the Subscription Ready: the
/// Subscription status controller (`controllers/readiness/subscription.rs`), or
/// Knative with `--dataplane knative`.
async fn subscription_ready(job: &Job) -> Result<Progress, StoreError> {
    let namespace = job.integration_namespace();
    let name = job.subscription_name();
    let Some(subscription) = job
        .store()
        .get::<Subscription>(Some(namespace), &name)
        .await?
    else {
        return Ok(Progress::Fail(format!(
            "Subscription {namespace}/{name} disappeared"
        )));
    };
    // No status yet: nobody has reported on it, so it is not ready.
    let status = subscription.status.unwrap_or_default();
    if status.is_ready() {
        return Ok(Progress::Done);
    }
    Ok(Progress::Wait(job.not_ready(
        &format!("Subscription {namespace}/{name}"),
        &status,
    )))
}

async fn release_subscription(job: &Job) -> Result<Progress, StoreError> {
    let store = job.store();
    let spec = job.spec();
    let namespace = job.integration_namespace();
    let name = job.subscription_name();
    let claims = Claims::read(job, None).await?;
    let mut now_unowned = false;
    let mut unreadable = None;
    let released = store
        .modify::<Subscription, _>(Some(namespace), &name, |subscription| {
            let mut owners = match owners_of(subscription) {
                Ok(owners) => owners,
                Err(error) => {
                    unreadable = Some(unreadable_owners(namespace, &name, &error));
                    return false;
                }
            };
            let removed = owners.remove(&spec.instance_id);
            now_unowned = owners.is_empty();
            set_owners(subscription, &owners);
            // What this instance asked for leaves with it.
            let delivery = claims.for_owners(&owners);
            let reclaimed = subscription.spec.delivery != delivery;
            subscription.spec.delivery = delivery;
            removed || reclaimed
        })
        .await?;
    if let Some(reason) = unreadable {
        return Ok(Progress::Fail(reason));
    }
    let Some(unowned) = released.filter(|_| now_unowned) else {
        return Ok(Progress::Done);
    };
    // Every operation's writes of the Subscription hold the namespace's lock, but
    // a person (or an older version) may write it too: delete only the version
    // seen without owners. If it moved on, the next attempt decides again.
    match store.delete_unchanged(&unowned).await {
        Ok(_) => {
            tracing::info!(application = %spec.application, namespace = %spec.namespace, "last owner gone: Subscription deleted");
            Ok(Progress::Done)
        }
        Err(StoreError::Conflict { .. }) => Ok(Progress::Wait(
            "the Subscription changed while its last owner left".into(),
        )),
        Err(error) => Err(error),
    }
}

async fn clean_namespace(job: &Job) -> Result<Progress, StoreError> {
    let store = job.store();
    let spec = job.spec();
    let instances: Vec<ServiceInstance> = store.list(None, &LabelSelector::everything()).await?;
    let remaining = instances
        .iter()
        .filter(|i| {
            i.spec.namespace == spec.namespace
                && i.is_live()
                && i.spec.instance_id != spec.instance_id
        })
        .count();
    if remaining > 0 {
        job.record(
            &format!(
                "namespace {} keeps its label and Broker: {remaining} event instance(s) remain",
                spec.namespace
            ),
            1,
        )
        .await;
        return Ok(Progress::Done);
    }
    let mut label_remains = false;
    store
        .modify::<Namespace, _>(None, &spec.namespace, |namespace| {
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
            .get::<Broker>(Some(&spec.namespace), Broker::DEFAULT_NAME)
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
            .delete::<Broker>(Some(&spec.namespace), Broker::DEFAULT_NAME)
            .await?;
        tracing::info!(namespace = %spec.namespace, "no event instances left: label and Broker removed");
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
    use crate::resources::{KindSpec, OperationKind, ServiceInstanceSpec};
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
            let owner = crate::locks::lock(&self.pending).take();
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

        async fn dry_run(
            &self,
            kind: &'static KindSpec,
            write: crate::store::Write,
        ) -> Result<DynamicObject, StoreError> {
            self.store.dry_run(kind, write).await
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
                    ..Default::default()
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

    fn instance(id: &str) -> ServiceInstance {
        ServiceInstance::new(
            id,
            ServiceInstanceSpec {
                instance_id: id.into(),
                application: "app".into(),
                namespace: "team-a".into(),
                ..Default::default()
            },
        )
    }

    /// The embedded store in `dir`, with namespace `name` in it.
    async fn store_with_namespace(dir: &std::path::Path, name: &str) -> TypedStore {
        let raw = EmbeddedStore::open(&dir.join("store.db")).expect("store");
        let store = TypedStore::new(Arc::new(raw) as Arc<dyn Store>);
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(name.into());
        store.create(&namespace).await.expect("namespace");
        store
    }

    #[tokio::test]
    async fn a_default_broker_of_another_class_is_waited_for_naming_its_class() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_namespace(dir.path(), "team-a").await;
        let mut broker = Broker::new(Broker::DEFAULT_NAME, Default::default());
        broker.metadata.namespace = Some("team-a".into());
        broker
            .annotations_mut()
            .insert(labels::BROKER_CLASS.into(), "Kafka".into());
        store.create(&broker).await.expect("broker");
        let (_stop, shutdown) = crate::shutdown::Shutdown::new();
        let job = Job::new(
            Context::for_tests(store, shutdown),
            &instance("a"),
            &Operation::default(),
        );
        match broker_ready(&job).await.expect("store works") {
            Progress::Wait(why) => assert!(
                why.contains("class \"Kafka\", which meshbroker does not serve"),
                "{why}"
            ),
            _ => panic!("a Broker nobody made Ready is waited for"),
        }
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
        let job = Job::new(
            Context::for_tests(store.clone(), shutdown),
            &instance("a"),
            &Operation::default(),
        );
        *crate::locks::lock(&interleaved.pending) = Some("b");

        let first = release_subscription(&job).await.expect("store works");
        assert!(
            matches!(first, Progress::Wait(_)),
            "the Subscription moved on: decide again"
        );
        let kept: Subscription = store
            .get(Some(INTEGRATION), "app.team-a")
            .await
            .expect("get")
            .expect("b still needs the Subscription");
        assert_eq!(
            owners_of(&kept).expect("readable owners"),
            BTreeSet::from(["b".to_string()])
        );
        let again = release_subscription(&job).await.expect("store works");
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

    #[tokio::test]
    async fn a_subscription_whose_owners_cannot_be_read_is_neither_rewritten_nor_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_namespace(dir.path(), INTEGRATION).await;
        let mut unreadable = subscription(&["a"]);
        unreadable
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(labels::SUBSCRIPTION_OWNERS.to_string(), "a,b".into());
        store.create(&unreadable).await.expect("subscription");
        let (_stop, shutdown) = crate::shutdown::Shutdown::new();
        let job = Job::new(
            Context::for_tests(store.clone(), shutdown),
            &instance("a"),
            &Operation::default(),
        );

        for (step, progress) in [
            ("subscribe", subscribe(&job).await),
            ("release", release_subscription(&job).await),
        ] {
            match progress.expect("store works") {
                Progress::Fail(reason) => assert!(
                    reason.contains(
                        "owners of Subscription kyma-integration/app.team-a cannot be read"
                    ),
                    "{step}: {reason}"
                ),
                _ => panic!("{step}: unknown owners must fail the step"),
            }
        }
        let kept: Subscription = store
            .get(Some(INTEGRATION), "app.team-a")
            .await
            .expect("get")
            .expect("still there");
        assert_eq!(
            kept.metadata.annotations.expect("annotations")[labels::SUBSCRIPTION_OWNERS],
            "a,b"
        );
    }

    #[test]
    fn owners_are_written_as_a_json_list() {
        let written = subscription(&["b", "a"]);
        assert_eq!(
            written.metadata.annotations.as_ref().expect("annotations")
                [labels::SUBSCRIPTION_OWNERS],
            r#"["a","b"]"#
        );
        assert_eq!(
            owners_of(&written).expect("readable"),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn null_or_absent_delivery_parameters_name_no_options() {
        for parameters in [
            None,
            Some(serde_json::json!({})),
            Some(serde_json::json!({"delivery": null})),
        ] {
            assert!(
                delivery_from(parameters.as_ref())
                    .expect("no options")
                    .is_none(),
                "{parameters:?}"
            );
        }
        assert!(delivery_from(Some(&serde_json::json!({"delivery": {"retry": "x"}}))).is_err());
    }

    fn labels_of(kind: OperationKind) -> Vec<String> {
        plan(kind).numbered().map(|(label, _)| label).collect()
    }

    /// The numbers clients read in `last_operation` descriptions.
    #[test]
    fn operations_are_numbered_from_their_tables() {
        assert_eq!(
            labels_of(OperationKind::Provision),
            [
                "step 1/5 channel-ready",
                "step 2/5 label-namespace",
                "step 3/5 broker-ready",
                "step 4/5 subscription",
                "step 5/5 subscription-ready",
            ]
        );
        assert_eq!(
            labels_of(OperationKind::Update),
            ["step 1/2 apply-parameters", "step 2/2 subscription-ready"]
        );
        assert_eq!(
            labels_of(OperationKind::Deprovision),
            ["step 1/2 release-subscription", "step 2/2 clean-namespace"]
        );
    }

    /// The runs of consecutive steps under the namespace's lock, numbered from 1.
    fn locked_runs(kind: OperationKind) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, (_, step)) in plan(kind).numbered().enumerate() {
            let number = i + 1;
            match runs.last_mut() {
                Some((_, last)) if step.namespace_lock && *last + 1 == number => *last = number,
                _ if step.namespace_lock => runs.push((number, number)),
                _ => {}
            }
        }
        runs
    }

    #[test]
    fn the_namespace_lock_covers_every_write_of_the_subscription_and_the_whole_deprovision() {
        assert_eq!(locked_runs(OperationKind::Provision), [(2, 4)]);
        assert_eq!(locked_runs(OperationKind::Update), [(1, 1)]);
        assert_eq!(locked_runs(OperationKind::Deprovision), [(1, 2)]);
    }

    /// An operation's steps as the README lists them, and which hold the lock.
    fn as_listed(kind: OperationKind) -> (String, Vec<String>) {
        let steps: Vec<&Step> = plan(kind).numbered().map(|(_, step)| step).collect();
        let list = steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let end = if i + 1 == steps.len() { "." } else { ";" };
                format!("{}. **{}** — {}{end}", i + 1, step.name, step.doc)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let locks = locked_runs(kind)
            .into_iter()
            .map(|(first, last)| match first == last {
                true => format!("Step {first} holds N's lock"),
                false => format!("Steps {first}–{last} hold N's lock"),
            })
            .collect();
        (list, locks)
    }

    #[test]
    fn the_readme_lists_the_steps_as_the_tables_do() {
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let readme = words(include_str!("../../README.md"));
        for kind in [
            OperationKind::Provision,
            OperationKind::Deprovision,
            OperationKind::Update,
        ] {
            let (list, locks) = as_listed(kind);
            assert!(
                readme.contains(&words(&list)),
                "README.md's Provisioning section should list the {kind:?} steps as\n{list}"
            );
            for lock in locks {
                assert!(readme.contains(&lock), "README.md should say: {lock}");
            }
        }
    }
}
