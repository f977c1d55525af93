//! Subscriptions: the resolved subscriber, reply and dead-letter sink
//! (`status.physicalSubscription`), and Knative's Subscription conditions.

use std::sync::Arc;

use async_trait::async_trait;

use super::conditions::{DEAD_LETTER_SINK_RESOLVE_FAILED, dead_letter_sink, parent_ready, routed};
use super::served::Served;
use super::writer::{Routing, StatusWriter};
use crate::controllers::resolve::{any_names_other_kind, resolve_destination};
use crate::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::resources::{
    Channel, Condition, ConditionStatus, Conditions, PhysicalSubscription, Subscription,
};
use crate::store::StoreError;

pub(super) struct SubscriptionStatusController(pub Arc<StatusWriter>);

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
        let spec = &subscription.spec;
        let channel_name = spec.channel.name.as_str();
        let channel = match subscription.channel_name() {
            Some(name) => store.get::<Channel>(Some(namespace), name).await?,
            None => None,
        };
        let subscriber = resolve_destination(store, &spec.subscriber, namespace).await?;
        let reply = match &spec.reply {
            Some(reply) => Some(resolve_destination(store, reply, namespace).await?),
            None => None,
        };
        let sink = dead_letter_sink(
            store,
            spec.delivery.as_ref(),
            channel_name,
            channel.as_ref(),
            namespace,
        )
        .await?;

        // Knative reports the first reference that fails; the Channel comes first.
        let unserved = subscription.unserved_channel();
        let references = if channel.is_none() {
            Condition::new(
                "ReferencesResolved",
                ConditionStatus::Unknown,
                "ChannelReferenceFailed",
                match &unserved {
                    Some(why) => format!("Failed to get spec.channel: {why}"),
                    None => format!(
                        "Failed to get spec.channel: Channel {channel_name:?} does not exist"
                    ),
                },
            )
        } else if let Err(why) = &subscriber {
            Condition::new(
                "ReferencesResolved",
                ConditionStatus::False,
                "SubscriberResolveFailed",
                format!("Failed to resolve spec.subscriber: {why}"),
            )
        } else if let Some(Err(why)) = &reply {
            Condition::new(
                "ReferencesResolved",
                ConditionStatus::False,
                "ReplyResolveFailed",
                format!("Failed to resolve spec.reply: {why}"),
            )
        } else if !sink.is_resolved() {
            Condition {
                type_: "ReferencesResolved".to_string(),
                reason: Some(DEAD_LETTER_SINK_RESOLVE_FAILED.to_string()),
                ..sink.condition.clone()
            }
        } else {
            Condition::met("ReferencesResolved")
        };

        let mut status = subscription.status.clone().unwrap_or_default();
        status.physical_subscription = PhysicalSubscription {
            subscriber_uri: subscriber.as_ref().ok().cloned(),
            reply_uri: reply.and_then(Result::ok),
            dead_letter_sink_uri: sink.uri,
        };
        // The routing table takes a Subscription into a served Channel's route once
        // its subscriber resolves.
        let routable =
            channel.as_ref().is_some_and(|c| c.refused().is_none()) && subscriber.is_ok();
        let routing = routable.then(|| {
            let carried = subscription
                .status
                .as_ref()
                .is_some_and(|read| read.physical_subscription == status.physical_subscription);
            self.0.routing(&subscription, carried)
        });
        let added = match (routing, self.0.why_unrouted(&subscription)) {
            // The table, built from this very object, chose not to carry it.
            (Some(Routing::Routed), Some(why)) => {
                Condition::new("AddedToChannel", ConditionStatus::False, "NotRoutable", why)
            }
            _ => routed(
                "AddedToChannel",
                routing,
                (
                    "NotAddedToChannel",
                    "added once the Channel exists, is served and spec.subscriber resolves",
                ),
            ),
        };
        let channel_ready = match unserved {
            Some(why) => Condition::new(
                "ChannelReady",
                ConditionStatus::False,
                "ChannelNotServed",
                why,
            ),
            None => parent_ready("ChannelReady", channel_name, channel.as_ref()),
        };
        status.set_living_conditions(vec![channel_ready, references, added, sink.condition]);
        let follows_other_kinds = any_names_other_kind([
            Some(&spec.subscriber),
            spec.reply.as_ref(),
            spec.delivery
                .as_ref()
                .and_then(|d| d.dead_letter_sink.as_ref()),
        ]);
        self.0
            .finish(subscription, status, routing, follows_other_kinds)
            .await
    }
}
