//! Starting the status controllers, and which changes wake which: a Channel its
//! Subscriptions, a Broker its Triggers and the Subscriptions delivering or
//! replying to it.

use std::sync::Arc;

use super::addressable::AddressableStatusController;
use super::http_source::HttpSourceStatusController;
use super::subscription::SubscriptionStatusController;
use super::trigger::TriggerStatusController;
use super::writer::StatusWriter;
use crate::mesh::controllers::MeshSettings;
use crate::mesh::controllers::runtime::{ObjectKey, Source, spawn_controller};
use crate::resources::{Broker, Channel, Destination, HttpSource, Subscription, Trigger, kind_of};
use crate::server::Shutdown;
use crate::store::{LabelSelector, TypedStore};

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
        Arc::new(AddressableStatusController::<Channel>::new(status.clone())),
        shutdown.clone(),
    );
    spawn_controller(
        "broker-status",
        raw.clone(),
        vec![Source::primary(kind_of::<Broker>())],
        Arc::new(AddressableStatusController::<Broker>::new(status.clone())),
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
                        let home = s.metadata.namespace.as_deref().unwrap_or_default();
                        let at_broker = |d: &Destination| names_broker(d, home, &namespace, &name);
                        at_broker(&s.spec.subscriber)
                            || s.spec.reply.as_ref().is_some_and(at_broker)
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

/// Whether `destination`, written in namespace `home`, refers to Broker
/// `namespace/name`.
fn names_broker(destination: &Destination, home: &str, namespace: &str, name: &str) -> bool {
    destination.reference.as_ref().is_some_and(|r| {
        r.kind == "Broker" && r.name == name && r.namespace.as_deref().unwrap_or(home) == namespace
    })
}
