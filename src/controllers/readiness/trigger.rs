//! Triggers: the resolved subscriber and dead-letter sink, and Knative's Trigger
//! conditions.

use std::sync::Arc;

use async_trait::async_trait;

use super::conditions::{dead_letter_sink, parent_ready, routed};
use super::writer::StatusWriter;
use crate::controllers::resolve::{any_names_other_kind, resolve_destination};
use crate::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::mesh::filter::Filter;
use crate::resources::{Broker, Condition, ConditionStatus, Conditions, Trigger};
use crate::store::StoreError;

/// Knative's annotation naming a source a Trigger depends on.
const DEPENDENCY_ANNOTATION: &str = "knative.dev/dependency";

pub(super) struct TriggerStatusController(pub Arc<StatusWriter>);

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
        let broker_name = trigger.spec.broker.as_str();
        let broker = store.get::<Broker>(Some(namespace), broker_name).await?;
        if broker
            .as_ref()
            .is_some_and(|broker| !broker.is_embedded_class())
        {
            // Its Broker's implementation reconciles it.
            return Ok(Requeue::Done);
        }
        let subscriber = resolve_destination(store, &trigger.spec.subscriber, namespace).await?;
        let sink = dead_letter_sink(
            store,
            trigger.spec.delivery.as_ref(),
            broker_name,
            broker.as_ref(),
            namespace,
        )
        .await?;

        let mut status = trigger.status.clone().unwrap_or_default();
        status.subscriber_uri = subscriber.as_ref().ok().cloned();
        status.dead_letter_sink_uri = sink.uri;
        let subscriber_resolved = match &subscriber {
            Ok(_) => Condition::met("SubscriberResolved"),
            Err(why) => Condition::new(
                "SubscriberResolved",
                ConditionStatus::False,
                "SubscriberResolveFailed",
                format!("Failed to resolve spec.subscriber: {why}"),
            ),
        };
        // Written through meshbroker, a filter compiled before it was stored;
        // one written past it (kubectl on a cluster) that does not compile is
        // left out of the route, and this says why.
        let filter_error = Filter::of_trigger(&trigger.spec).err();
        // The routing table gives a Trigger a place in its Broker's route once its
        // subscriber resolves and its filter compiles.
        let routing =
            (broker.is_some() && subscriber.is_ok() && filter_error.is_none()).then(|| {
                let carried = trigger.status.as_ref().is_some_and(|read| {
                    read.subscriber_uri == status.subscriber_uri
                        && read.dead_letter_sink_uri == status.dead_letter_sink_uri
                });
                self.0.routing(&trigger, carried)
            });
        status.set_living_conditions(vec![
            broker_ready(parent_ready("BrokerReady", broker_name, broker.as_ref())),
            subscriber_resolved,
            sink.condition,
            match filter_error {
                Some(invalid) => Condition::new(
                    "SubscriptionReady",
                    ConditionStatus::False,
                    "FilterInvalid",
                    format!(
                        "{}: {} (events are not routed to it)",
                        invalid.field, invalid.message
                    ),
                ),
                None => routed(
                    "SubscriptionReady",
                    routing,
                    (
                        "SubscriptionNotConfigured",
                        "subscribed once the Broker exists and spec.subscriber resolves",
                    ),
                ),
            },
            dependency_ready(&trigger),
        ]);
        let spec = &trigger.spec;
        let follows_other_kinds = any_names_other_kind([
            Some(&spec.subscriber),
            spec.delivery
                .as_ref()
                .and_then(|d| d.dead_letter_sink.as_ref()),
        ]);
        self.0
            .finish(trigger, status, routing, follows_other_kinds)
            .await
    }
}

/// Knative holds a Trigger back until the source its `knative.dev/dependency`
/// annotation names is ready. meshbroker does not track sources, so it reports the
/// dependency met, and says so when one is named (as Knative reports a feature it
/// does not support: True, with the reason).
fn dependency_ready(trigger: &Trigger) -> Condition {
    let named = trigger
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(DEPENDENCY_ANNOTATION));
    if named {
        Condition::new(
            "DependencyReady",
            ConditionStatus::True,
            "DependencyNotTracked",
            format!("the {DEPENDENCY_ANNOTATION} annotation is not tracked by meshbroker"),
        )
    } else {
        Condition::met("DependencyReady")
    }
}

/// "If the Broker does not currently exist or the Broker's `Ready` condition is
/// not `true`, then the Trigger's `Ready` condition MUST be `false`" (Knative's
/// control plane): a Broker not yet reconciled, or still being routed, is
/// False here, not Unknown.
fn broker_ready(condition: Condition) -> Condition {
    match condition.status {
        ConditionStatus::Unknown => Condition {
            status: ConditionStatus::False,
            ..condition
        },
        _ => condition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_not_ready_yet_makes_broker_ready_false() {
        let unknown = Condition::new(
            "BrokerReady",
            ConditionStatus::Unknown,
            "BrokerNotReady",
            "Broker \"default\" has not yet been reconciled",
        );
        let made = broker_ready(unknown.clone());
        assert_eq!(made.status, ConditionStatus::False);
        assert_eq!(made.reason, unknown.reason);
        assert_eq!(made.message, unknown.message);
        for status in [ConditionStatus::True, ConditionStatus::False] {
            let kept = Condition::new("BrokerReady", status, "R", "m");
            assert_eq!(broker_ready(kept.clone()), kept);
        }
    }
}
