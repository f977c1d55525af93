//! Status for what the embedded dataplane serves: Channels and Brokers get their
//! address on the events listener and Ready; HTTPSources their ingress URL;
//! Subscriptions and Triggers say whether their channel/broker is ready and their
//! subscriber and dead-letter sink resolve. Status is written only when it changed.

use std::sync::Arc;

use async_trait::async_trait;
use kube::core::object::HasStatus;

use super::MeshSettings;
use super::resolve::resolve_destination;
use super::runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use crate::resources::{
    Broker, Channel, ConditionStatus, Conditions, Destination, HttpSource, Subscription, Trigger,
    Typed, kind_of,
};
use crate::server::Shutdown;
use crate::store::{LabelSelector, StoreError, TypedStore};

/// Unresolved destinations are looked at again this often, in case they appear.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(10);
/// How soon to check again whether the dataplane routes an object yet.
const ROUTING_RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// Status of what meshbroker serves: the HTTPSources always; Channels, Brokers,
/// Subscriptions and Triggers only when the embedded dataplane serves them (with
/// `--dataplane knative`, Knative's controllers write theirs).
pub fn start(store: TypedStore, settings: Arc<MeshSettings>, shutdown: Shutdown) {
    let raw = store.raw().clone();
    let status = Arc::new(StatusWriter {
        store: store.clone(),
        settings: settings.clone(),
    });
    spawn_controller(
        "httpsource-status",
        raw.clone(),
        vec![Source::primary(kind_of::<HttpSource>())],
        Arc::new(HttpSourceStatusController(status.clone())),
        shutdown.clone(),
    );
    if settings.dataplane.is_some() {
        start_mesh_status(store, status, shutdown);
    }
}

fn start_mesh_status(store: TypedStore, status: Arc<StatusWriter>, shutdown: Shutdown) {
    let raw = store.raw().clone();
    spawn_controller(
        "channel-status",
        raw.clone(),
        vec![Source::primary(kind_of::<Channel>())],
        Arc::new(ChannelStatusController(status.clone())),
        shutdown.clone(),
    );
    spawn_controller(
        "broker-status",
        raw.clone(),
        vec![Source::primary(kind_of::<Broker>())],
        Arc::new(BrokerStatusController(status.clone())),
        shutdown.clone(),
    );

    let subscriptions_of_channel = {
        let store = store.clone();
        move |channel: kube::core::DynamicObject| {
            let store = store.clone();
            async move {
                let namespace = channel.metadata.namespace.clone().unwrap_or_default();
                let name = channel.metadata.name.clone().unwrap_or_default();
                store
                    .list::<Subscription>(Some(&namespace), &LabelSelector::everything())
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.spec.channel.name == name)
                    .map(|s| {
                        ObjectKey::namespaced(&namespace, &s.metadata.name.unwrap_or_default())
                    })
                    .collect()
            }
        }
    };
    let subscriptions_to_broker = {
        let store = store.clone();
        move |broker: kube::core::DynamicObject| {
            let store = store.clone();
            async move {
                let namespace = broker.metadata.namespace.clone().unwrap_or_default();
                let name = broker.metadata.name.clone().unwrap_or_default();
                store
                    .list::<Subscription>(None, &LabelSelector::everything())
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| {
                        s.spec.subscriber.reference.as_ref().is_some_and(|r| {
                            r.kind == "Broker"
                                && r.name == name
                                && r.namespace
                                    .as_deref()
                                    .unwrap_or(s.metadata.namespace.as_deref().unwrap_or_default())
                                    == namespace
                        })
                    })
                    .map(|s| {
                        ObjectKey::namespaced(
                            s.metadata.namespace.as_deref().unwrap_or_default(),
                            &s.metadata.name.unwrap_or_default(),
                        )
                    })
                    .collect()
            }
        }
    };
    spawn_controller(
        "subscription-status",
        raw.clone(),
        vec![
            Source::primary(kind_of::<Subscription>()),
            Source::mapped_async(kind_of::<Channel>(), subscriptions_of_channel),
            Source::mapped_async(kind_of::<Broker>(), subscriptions_to_broker),
        ],
        Arc::new(SubscriptionStatusController(status.clone())),
        shutdown.clone(),
    );

    let triggers_of_broker = {
        let store = store.clone();
        move |broker: kube::core::DynamicObject| {
            let store = store.clone();
            async move {
                let namespace = broker.metadata.namespace.clone().unwrap_or_default();
                let name = broker.metadata.name.clone().unwrap_or_default();
                store
                    .list::<Trigger>(Some(&namespace), &LabelSelector::everything())
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t.spec.broker == name)
                    .map(|t| {
                        ObjectKey::namespaced(&namespace, &t.metadata.name.unwrap_or_default())
                    })
                    .collect()
            }
        }
    };
    spawn_controller(
        "trigger-status",
        raw,
        vec![
            Source::primary(kind_of::<Trigger>()),
            Source::mapped_async(kind_of::<Broker>(), triggers_of_broker),
        ],
        Arc::new(TriggerStatusController(status)),
        shutdown,
    );
}

struct StatusWriter {
    store: TypedStore,
    settings: Arc<MeshSettings>,
}

impl StatusWriter {
    /// Writes `status` unless it is already there; a lost race is retried by the loop.
    async fn write<K>(&self, mut object: K, status: K::Status) -> Result<(), StoreError>
    where
        K: Typed + HasStatus,
        K::Status: PartialEq,
    {
        if object.status() != Some(&status) {
            *object.status_mut() = Some(status);
            self.store.replace(&object).await?;
        }
        Ok(())
    }

    fn events_url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.events_url)
    }
}

struct ChannelStatusController(Arc<StatusWriter>);

#[async_trait]
impl Reconciler for ChannelStatusController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let Some(channel) = self
            .0
            .store
            .get::<Channel>(key.namespace.as_deref(), &key.name)
            .await?
        else {
            return Ok(Requeue::Done);
        };
        let mut status = channel.status.clone().unwrap_or_default();
        match channel.spec.unsupported_reason() {
            Some(reason) => {
                status.address.url = None;
                status.set_condition(
                    "Ready",
                    ConditionStatus::False,
                    "UnsupportedChannel",
                    reason,
                );
            }
            None => {
                let namespace = key.namespace.as_deref().unwrap_or_default();
                status.address.url = Some(
                    self.0
                        .events_url(&format!("channels/{namespace}/{}", key.name)),
                );
            }
        }
        let requeue = match channel.spec.unsupported_reason() {
            Some(_) => Requeue::Done,
            None => set_ready(
                &self.0,
                &mut status,
                true,
                true,
                channel.metadata.resource_version.as_deref(),
                "",
            ),
        };
        status.observed_generation = channel.metadata.generation;
        self.0.write(channel, status).await?;
        Ok(requeue)
    }
}

struct BrokerStatusController(Arc<StatusWriter>);

#[async_trait]
impl Reconciler for BrokerStatusController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let Some(broker) = self
            .0
            .store
            .get::<Broker>(key.namespace.as_deref(), &key.name)
            .await?
        else {
            return Ok(Requeue::Done);
        };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let mut status = broker.status.clone().unwrap_or_default();
        status.address.url = Some(self.0.events_url(&format!("{namespace}/{}", key.name)));
        let requeue = set_ready(
            &self.0,
            &mut status,
            true,
            true,
            broker.metadata.resource_version.as_deref(),
            "",
        );
        status.observed_generation = broker.metadata.generation;
        self.0.write(broker, status).await?;
        Ok(requeue)
    }
}

struct HttpSourceStatusController(Arc<StatusWriter>);

#[async_trait]
impl Reconciler for HttpSourceStatusController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let Some(source) = self
            .0
            .store
            .get::<HttpSource>(key.namespace.as_deref(), &key.name)
            .await?
        else {
            return Ok(Requeue::Done);
        };
        let mut status = source.status.clone().unwrap_or_default();
        status.url = Some(self.0.events_url(&format!("{}/events", source.spec.source)));
        status.set_condition("Ready", ConditionStatus::True, "Served", "");
        self.0.write(source, status).await?;
        Ok(Requeue::Done)
    }
}

struct SubscriptionStatusController(Arc<StatusWriter>);

#[async_trait]
impl Reconciler for SubscriptionStatusController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let store = &self.0.store;
        let Some(subscription) = store
            .get::<Subscription>(key.namespace.as_deref(), &key.name)
            .await?
        else {
            return Ok(Requeue::Done);
        };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let mut status = subscription.status.clone().unwrap_or_default();
        let channel = store
            .get::<Channel>(Some(namespace), &subscription.spec.channel.name)
            .await?;
        let channel_ready = channel
            .as_ref()
            .and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.is_ready());
        if channel_ready {
            status.set_condition("ChannelReady", ConditionStatus::True, "", "");
        } else {
            let message = format!(
                "Channel {namespace}/{} is missing or not ready",
                subscription.spec.channel.name
            );
            status.set_condition(
                "ChannelReady",
                ConditionStatus::False,
                "ChannelNotReady",
                message,
            );
        }
        let subscriber =
            resolve_destination(store, &subscription.spec.subscriber, namespace).await?;
        status.physical_subscription.subscriber_uri = subscriber.as_ref().ok().cloned();
        set_resolved(&mut status, "SubscriberResolved", &subscriber);
        let sink = subscription
            .spec
            .delivery
            .as_ref()
            .and_then(|d| d.dead_letter_sink.as_ref());
        let (sink_uri, sink_ok) = resolve_dead_letter(store, &mut status, sink, namespace).await?;
        status.physical_subscription.dead_letter_sink_uri = sink_uri;
        let ready = channel_ready && subscriber.is_ok() && sink_ok;
        let read = subscription.status.clone().unwrap_or_default();
        let carried = read.physical_subscription == status.physical_subscription;
        let requeue = set_ready(
            &self.0,
            &mut status,
            ready,
            carried,
            subscription.metadata.resource_version.as_deref(),
            "the channel, subscriber or dead-letter sink is not ready",
        );
        status.observed_generation = subscription.metadata.generation;
        self.0.write(subscription, status).await?;
        Ok(requeue)
    }
}

struct TriggerStatusController(Arc<StatusWriter>);

#[async_trait]
impl Reconciler for TriggerStatusController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let store = &self.0.store;
        let Some(trigger) = store
            .get::<Trigger>(key.namespace.as_deref(), &key.name)
            .await?
        else {
            return Ok(Requeue::Done);
        };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let mut status = trigger.status.clone().unwrap_or_default();
        let broker = store
            .get::<Broker>(Some(namespace), &trigger.spec.broker)
            .await?;
        let broker_ready = broker
            .as_ref()
            .and_then(|b| b.status.as_ref())
            .is_some_and(|s| s.is_ready());
        if broker_ready {
            status.set_condition("BrokerReady", ConditionStatus::True, "", "");
        } else {
            let message = format!(
                "Broker {namespace}/{} is missing or not ready",
                trigger.spec.broker
            );
            status.set_condition(
                "BrokerReady",
                ConditionStatus::False,
                "BrokerNotReady",
                message,
            );
        }
        let subscriber = resolve_destination(store, &trigger.spec.subscriber, namespace).await?;
        status.subscriber_uri = subscriber.as_ref().ok().cloned();
        set_resolved(&mut status, "SubscriberResolved", &subscriber);
        let ready = broker_ready && subscriber.is_ok();
        let delivery = trigger
            .spec
            .delivery
            .as_ref()
            .or(broker.as_ref().and_then(|b| b.spec.delivery.as_ref()));
        let sink = delivery.and_then(|d| d.dead_letter_sink.as_ref());
        let (sink_uri, sink_ok) = resolve_dead_letter(store, &mut status, sink, namespace).await?;
        status.dead_letter_sink_uri = sink_uri;
        let ready = ready && sink_ok;
        let read = trigger.status.clone().unwrap_or_default();
        let carried = read.subscriber_uri == status.subscriber_uri
            && read.dead_letter_sink_uri == status.dead_letter_sink_uri;
        let requeue = set_ready(
            &self.0,
            &mut status,
            ready,
            carried,
            trigger.metadata.resource_version.as_deref(),
            "the broker, subscriber or dead-letter sink is not ready",
        );
        status.observed_generation = trigger.metadata.generation;
        self.0.write(trigger, status).await?;
        Ok(requeue)
    }
}

/// The dead-letter sink's URI and its `DeadLetterSinkResolved` condition; false
/// when one is configured but does not resolve.
async fn resolve_dead_letter(
    store: &TypedStore,
    status: &mut impl Conditions,
    sink: Option<&Destination>,
    namespace: &str,
) -> Result<(Option<String>, bool), StoreError> {
    let Some(sink) = sink else {
        status.set_condition(
            "DeadLetterSinkResolved",
            ConditionStatus::True,
            "NoDeadLetterSink",
            "no dead-letter sink is configured",
        );
        return Ok((None, true));
    };
    let resolved = resolve_destination(store, sink, namespace).await?;
    set_resolved(status, "DeadLetterSinkResolved", &resolved);
    Ok((resolved.as_ref().ok().cloned(), resolved.is_ok()))
}

fn set_resolved(status: &mut impl Conditions, condition: &str, resolved: &Result<String, String>) {
    match resolved {
        Ok(_) => status.set_condition(condition, ConditionStatus::True, "", ""),
        Err(reason) => status.set_condition(
            condition,
            ConditionStatus::False,
            "Unresolved",
            reason.clone(),
        ),
    }
}

/// Sets `Ready` and says when to look again. An object whose dependencies are
/// ready is Ready only once the embedded dataplane routes it as read (`carried`:
/// the object as read already holds the status fields routing uses), so Ready
/// means events flow to it now.
fn set_ready(
    writer: &StatusWriter,
    status: &mut impl Conditions,
    ready: bool,
    carried: bool,
    resource_version: Option<&str>,
    otherwise: &str,
) -> Requeue {
    // Once Ready with the same routing content it stays Ready: its own status
    // write must not send it back to waiting for a rebuild.
    let routed = carried
        && (status.is_ready()
            || writer
                .settings
                .dataplane
                .as_ref()
                .is_none_or(|router| router.has_routed(resource_version)));
    match (ready, routed) {
        (true, true) => {
            status.set_condition("Ready", ConditionStatus::True, "", "");
            Requeue::Done
        }
        (true, false) => {
            status.set_condition(
                "Ready",
                ConditionStatus::False,
                "Routing",
                "waiting for the dataplane to route it",
            );
            Requeue::After(ROUTING_RECHECK)
        }
        (false, _) => {
            status.set_condition("Ready", ConditionStatus::False, "NotReady", otherwise);
            Requeue::After(RECHECK)
        }
    }
}
