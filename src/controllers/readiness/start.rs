//! Starting the status controllers, and which changes wake which: a Channel its
//! Subscriptions, a Broker its Triggers and the Subscriptions delivering or
//! replying to it.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::core::DynamicObject;

use super::addressable::AddressableStatusController;
use super::http_source::HttpSourceStatusController;
use super::subscription::SubscriptionStatusController;
use super::trigger::TriggerStatusController;
use super::writer::StatusWriter;
use crate::controllers::MeshSettings;
use crate::controllers::runtime::{ObjectKey, Source, spawn_controller};
use crate::resources::{
    Broker, Channel, Destination, HttpSource, Subscription, Trigger, Typed, kind_of,
};
use crate::shutdown::Shutdown;
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

    let subscriptions_of_channel =
        referrers::<Subscription>(store.clone(), Scope::Own, |s, home, ns, name| {
            home == ns && s.spec.channel.name == name
        });
    let subscriptions_to_broker =
        referrers::<Subscription>(store.clone(), Scope::All, |s, home, ns, name| {
            let at_broker = |d: &Destination| names_broker(d, home, ns, name);
            at_broker(&s.spec.subscriber) || s.spec.reply.as_ref().is_some_and(at_broker)
        });
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

    let triggers_of_broker =
        referrers::<Trigger>(store.clone(), Scope::Own, |t, home, ns, name| {
            home == ns && t.spec.broker == name
        });
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

/// Where the objects that may refer to a changed object live.
#[derive(Clone, Copy)]
enum Scope {
    /// In the changed object's namespace.
    Own,
    /// Anywhere (a Subscription may reply to a Broker of its own namespace while
    /// its Channel is elsewhere).
    All,
}

/// A mapper from a changed object to the keys of the `K`s that `refers` says
/// point at it (`refers(k, k's namespace, changed namespace, changed name)`). A
/// store failure is logged, not hidden: those objects are then only looked at
/// again at their own next change or recheck.
fn referrers<K: Typed>(
    store: TypedStore,
    scope: Scope,
    refers: fn(&K, &str, &str, &str) -> bool,
) -> impl Fn(DynamicObject) -> BoxFuture<'static, Vec<ObjectKey>> + Send + Sync + 'static {
    move |changed: DynamicObject| {
        let store = store.clone();
        Box::pin(async move {
            let namespace = changed.metadata.namespace.clone().unwrap_or_default();
            let name = changed.name_any();
            let within = match scope {
                Scope::Own => Some(namespace.as_str()),
                Scope::All => None,
            };
            let candidates = match store.list::<K>(within, &LabelSelector::everything()).await {
                Ok(candidates) => candidates,
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&()), changed = %format!("{namespace}/{name}"),
                        "listing the objects that refer to a changed one failed; they wait for their next change");
                    return Vec::new();
                }
            };
            candidates
                .into_iter()
                .filter_map(|candidate| {
                    let meta = candidate.meta();
                    let home = meta.namespace.as_deref().unwrap_or_default();
                    refers(&candidate, home, &namespace, &name).then(|| {
                        ObjectKey::namespaced(home, meta.name.as_deref().unwrap_or_default())
                    })
                })
                .collect()
        })
    }
}

/// Whether `destination`, written in namespace `home`, refers to Broker
/// `namespace/name`.
fn names_broker(destination: &Destination, home: &str, namespace: &str, name: &str) -> bool {
    destination.reference.as_ref().is_some_and(|r| {
        r.kind == "Broker" && r.name == name && r.namespace.as_deref().unwrap_or(home) == namespace
    })
}
