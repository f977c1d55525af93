//! Brokers and Channels: one status controller for both. Each gets its address on
//! the events listener, its resolved dead-letter sink, and the conditions Knative
//! reports for its kind (see the table in the module above); a Channel also lists
//! its Subscriptions, in its spec and in its status.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;

use super::conditions::own_dead_letter_sink;
use super::served::Served;
use super::writer::{MeshStatus, Routing, StatusWriter};
use crate::controllers::resolve::any_names_other_kind;
use crate::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::resources::{
    Condition, ConditionStatus, Conditions, SubscriberSpec, SubscriberStatus, Subscription,
};
use crate::store::{LabelSelector, StoreError, TypedStore};

pub(super) struct AddressableStatusController<K> {
    writer: Arc<StatusWriter>,
    kind: PhantomData<fn() -> K>,
}

impl<K> AddressableStatusController<K> {
    pub fn new(writer: Arc<StatusWriter>) -> Self {
        Self {
            writer,
            kind: PhantomData,
        }
    }
}

#[async_trait]
impl<K: Served> Reconciler for AddressableStatusController<K> {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let store = &self.writer.store;
        let Some(mut object) = store.get::<K>(key.namespace.as_deref(), &key.name).await? else {
            return Ok(Requeue::Done);
        };
        if !object.is_ours() {
            return Ok(Requeue::Done);
        }
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let mut status = object.status().cloned().unwrap_or_default();
        // A Channel lists its Subscriptions in its spec, which takes a write of
        // its own (and a generation). Its route does not depend on the list, so
        // a Channel routed before that write is routed after it, if no other
        // write came in between.
        let mut listed_while_routed = false;
        if K::LISTS_SUBSCRIBERS {
            let subscriptions = subscriptions_of(store, namespace, &key.name).await?;
            let listed: Vec<SubscriberSpec> =
                subscriptions.iter().map(SubscriberSpec::of).collect();
            if object.set_subscribers(&listed) {
                let routed =
                    status.routed() && status.observed_generation() == object.meta().generation;
                let written = store
                    .modify::<K, _>(key.namespace.as_deref(), &key.name, |stored| {
                        stored.set_subscribers(&listed)
                    })
                    .await?;
                let Some(written) = written else {
                    return Ok(Requeue::Done);
                };
                // Only this write in between: one generation on, status untouched.
                let only_this_write = written.meta().generation
                    == object.meta().generation.map(|g| g + 1)
                    && written.status() == object.status();
                listed_while_routed = routed && only_this_write;
                object = written;
            }
            status.subscribers = subscribers_status(&subscriptions);
        }
        let refused = object.refused();
        status.address.url = match refused {
            Some(_) => None,
            None => Some(
                self.writer
                    .events_url(&K::address_path(namespace, &key.name)),
            ),
        };
        let addressable = match status.address.url {
            Some(_) => Condition::met("Addressable"),
            None => Condition::new(
                "Addressable",
                ConditionStatus::False,
                "EmptyHostname",
                "not served by the embedded dataplane, so it has no address",
            ),
        };
        let sink = own_dead_letter_sink(store, object.delivery(), namespace).await?;
        status.dead_letter_sink_uri = sink.uri;
        let serving = match &refused {
            Some(why) => Err(why.as_str()),
            // Routing reads a Broker's or Channel's spec and address, no other
            // status: the object's revision is all the table has to reach.
            None if listed_while_routed => Ok(Routing::Routed),
            None => Ok(self.writer.routing(&object, true)),
        };
        let mut conditions = K::serving_conditions(serving);
        conditions.push(addressable);
        conditions.push(sink.condition);
        status.set_living_conditions(conditions);
        let follows_other_kinds =
            any_names_other_kind([object.delivery().and_then(|d| d.dead_letter_sink.as_ref())]);
        self.writer
            .finish(object, status, serving.ok(), follows_other_kinds)
            .await
    }
}

/// A Channel's Subscriptions, sorted by uid (so what is written from them again
/// is equal).
async fn subscriptions_of(
    store: &TypedStore,
    namespace: &str,
    channel: &str,
) -> Result<Vec<Subscription>, StoreError> {
    let mut subscriptions: Vec<Subscription> = store
        .list::<Subscription>(Some(namespace), &LabelSelector::everything())
        .await?
        .into_iter()
        .filter(|s| s.channel_name() == Some(channel))
        .collect();
    subscriptions.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    Ok(subscriptions)
}

/// A Channel's Subscriptions as its `status.subscribers` lists them (Knative's
/// Channelable): each by uid, with whether the dataplane delivers to it, as its
/// own `AddedToChannel` says.
fn subscribers_status(subscriptions: &[Subscription]) -> Vec<SubscriberStatus> {
    subscriptions
        .iter()
        .map(|subscription| {
            let added = subscription
                .status
                .as_ref()
                .and_then(|s| s.condition("AddedToChannel"));
            SubscriberStatus {
                uid: subscription.metadata.uid.clone().unwrap_or_default(),
                generation: subscription.metadata.generation,
                observed_generation: subscription.metadata.generation,
                ready: added.map_or(ConditionStatus::Unknown, |c| c.status),
                message: added.and_then(|c| c.message.clone()),
            }
        })
        .collect()
}
