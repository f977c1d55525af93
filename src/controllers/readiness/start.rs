//! Starting the status controllers, and which changes wake which: a Channel its
//! Subscriptions, a Broker its Triggers, and either every object that delivers,
//! replies or dead-letters to it — so one deleted makes those not Ready
//! (Knative: a reference that does not resolve MUST make Ready false).

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::core::DynamicObject;

use super::addressable::AddressableStatusController;
use super::http_source::HttpSourceStatusController;
use super::served::Served;
use super::subscription::SubscriptionStatusController;
use super::trigger::TriggerStatusController;
use super::writer::StatusWriter;
use crate::controllers::MeshSettings;
use crate::controllers::runtime::{ObjectKey, Source, spawn_controller};
use crate::resources::{
    Application, ApplicationMapping, Broker, Channel, DeliverySpec, Destination, HttpSource,
    Subscription, Trigger, Typed, kind_of,
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
        vec![
            Source::primary(kind_of::<HttpSource>()),
            // An Application coming or going makes its sources served or not.
            Source::mapped_async(
                kind_of::<Application>(),
                referrers::<HttpSource>(store.clone(), Scope::All, |source, _, _, name| {
                    source.spec.source == name
                }),
            ),
            // So does its mapping into the source's namespace.
            Source::mapped_async(
                kind_of::<ApplicationMapping>(),
                referrers::<HttpSource>(store.clone(), Scope::Own, |source, _, _, name| {
                    source.spec.source == name
                }),
            ),
        ],
        Arc::new(HttpSourceStatusController(status.clone())),
        shutdown.clone(),
    );
    if settings.dataplane.is_some() {
        start_mesh_status(store, status, shutdown);
    }
}

fn start_mesh_status(store: TypedStore, status: Arc<StatusWriter>, shutdown: Shutdown) {
    let raw = store.raw().clone();
    // A Broker's or Channel's dead-letter sink may be another Broker or Channel.
    // Looked for in the changed object's namespace only, as for Triggers below (a
    // namespace may hold thousands): one naming another namespace is resolved
    // again at its own next change.
    spawn_controller(
        "channel-status",
        raw.clone(),
        vec![
            Source::primary(kind_of::<Channel>()),
            // A Channel lists its Subscriptions and whether each is delivered to.
            Source::mapped(kind_of::<Subscription>(), |subscription| {
                let channel = subscription.data["spec"]["channel"]["name"].as_str();
                let namespace = subscription.metadata.namespace.as_deref();
                match (namespace, channel) {
                    (Some(namespace), Some(channel)) => {
                        vec![ObjectKey::namespaced(namespace, channel)]
                    }
                    _ => Vec::new(),
                }
            }),
        ]
        .into_iter()
        .chain(dead_letter_sources::<Channel>(&store))
        .collect(),
        Arc::new(AddressableStatusController::<Channel>::new(status.clone())),
        shutdown.clone(),
    );
    spawn_controller(
        "broker-status",
        raw.clone(),
        [Source::primary(kind_of::<Broker>())]
            .into_iter()
            .chain(dead_letter_sources::<Broker>(&store))
            .collect(),
        Arc::new(AddressableStatusController::<Broker>::new(status.clone())),
        shutdown.clone(),
    );

    // A Subscription hears of its Channel, and of every Broker or Channel it
    // delivers, replies or dead-letters to: one deleted or changed makes it
    // resolve again (and not Ready when it is gone).
    spawn_controller(
        "subscription-status",
        raw.clone(),
        vec![
            Source::primary(kind_of::<Subscription>()),
            Source::mapped_async(
                kind_of::<Channel>(),
                referrers::<Subscription>(store.clone(), Scope::All, |s, home, ns, name| {
                    (home == ns && s.channel_name() == Some(name))
                        || subscription_targets(s).any(|d| names(d, "Channel", home, ns, name))
                }),
            ),
            Source::mapped_async(
                kind_of::<Broker>(),
                referrers::<Subscription>(store.clone(), Scope::All, |s, home, ns, name| {
                    subscription_targets(s).any(|d| names(d, "Broker", home, ns, name))
                }),
            ),
        ],
        Arc::new(SubscriptionStatusController(status.clone())),
        shutdown.clone(),
    );

    // A Trigger hears of its Broker, and of every Broker or Channel it delivers
    // or dead-letters to.
    spawn_controller(
        "trigger-status",
        raw,
        vec![
            Source::primary(kind_of::<Trigger>()),
            Source::mapped_async(
                kind_of::<Broker>(),
                referrers::<Trigger>(store.clone(), Scope::Own, |t, home, ns, name| {
                    t.spec.broker == name
                        || trigger_targets(t).any(|d| names(d, "Broker", home, ns, name))
                }),
            ),
            Source::mapped_async(
                kind_of::<Channel>(),
                referrers::<Trigger>(store.clone(), Scope::Own, |t, home, ns, name| {
                    trigger_targets(t).any(|d| names(d, "Channel", home, ns, name))
                }),
            ),
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

/// Whether `destination`, written in namespace `home`, refers to the `kind`
/// (Broker or Channel) `namespace/name`.
fn names(
    destination: Option<&Destination>,
    kind: &str,
    home: &str,
    namespace: &str,
    name: &str,
) -> bool {
    destination
        .and_then(|d| d.reference.as_ref())
        .is_some_and(|r| {
            r.kind == kind && r.name == name && r.namespace.as_deref().unwrap_or(home) == namespace
        })
}

fn sink_of(delivery: &Option<DeliverySpec>) -> Option<&Destination> {
    delivery.as_ref().and_then(|d| d.dead_letter_sink.as_ref())
}

/// A Broker's or Channel's status hears of the Broker or Channel its dead-letter
/// sink names (in its own namespace).
fn dead_letter_sources<K: Served>(store: &TypedStore) -> [Source; 2] {
    [
        Source::mapped_async(
            kind_of::<Broker>(),
            referrers::<K>(store.clone(), Scope::Own, |o, home, ns, name| {
                names(own_sink(o), "Broker", home, ns, name)
            }),
        ),
        Source::mapped_async(
            kind_of::<Channel>(),
            referrers::<K>(store.clone(), Scope::Own, |o, home, ns, name| {
                names(own_sink(o), "Channel", home, ns, name)
            }),
        ),
    ]
}

fn own_sink<K: Served>(object: &K) -> Option<&Destination> {
    object.delivery().and_then(|d| d.dead_letter_sink.as_ref())
}

/// Where a Subscription sends: its subscriber, reply and dead-letter sink.
fn subscription_targets(s: &Subscription) -> impl Iterator<Item = Option<&Destination>> {
    [
        Some(&s.spec.subscriber),
        s.spec.reply.as_ref(),
        sink_of(&s.spec.delivery),
    ]
    .into_iter()
}

/// Where a Trigger sends: its subscriber and dead-letter sink.
fn trigger_targets(t: &Trigger) -> impl Iterator<Item = Option<&Destination>> {
    [Some(&t.spec.subscriber), sink_of(&t.spec.delivery)].into_iter()
}
