//! Conditions more than one kind reports, worded as Knative words them: a
//! parent's Ready propagated, routing, and dead-letter sinks.

use super::served::Served;
use super::writer::Routing;
use crate::controllers::resolve::resolve_destination;
use crate::resources::{Condition, ConditionStatus, Conditions, DeliverySpec};
use crate::store::{StoreError, TypedStore};

pub(super) const DEAD_LETTER_SINK_RESOLVED: &str = "DeadLetterSinkResolved";
/// The reason Knative gives for a dead-letter sink that does not resolve.
pub(super) const DEAD_LETTER_SINK_RESOLVE_FAILED: &str = "DeadLetterSinkResolveFailed";

/// `type_` from whether the routing table routes the object; None when it cannot
/// be routed yet, for the reason and message `unmet` gives.
pub(super) fn routed(type_: &str, routing: Option<Routing>, unmet: (&str, &str)) -> Condition {
    match routing {
        Some(Routing::Routed) => Condition::met(type_),
        Some(Routing::Waiting) => Condition::new(
            type_,
            ConditionStatus::Unknown,
            "Routing",
            "waiting for the dataplane to route it",
        ),
        None => Condition::new(type_, ConditionStatus::Unknown, unmet.0, unmet.1),
    }
}

/// A Broker's or Channel's Ready propagated into `type_`: missing is False
/// (`BrokerDoesNotExist`), Ready is True; otherwise its status with reason
/// `BrokerNotReady` (`ChannelNotReady`) and a message naming it and why, so the
/// dependent's `Ready` says the parent is the cause ("the reason SHOULD indicate
/// that the corresponding Channel is missing or not ready") rather than passing
/// on a reason (a dead-letter sink's, say) that reads as its own.
pub(super) fn parent_ready<P: Served>(type_: &str, name: &str, parent: Option<&P>) -> Condition {
    let kind = P::kind(&());
    let Some(parent) = parent else {
        return Condition::new(
            type_,
            ConditionStatus::False,
            &format!("{kind}DoesNotExist"),
            format!("{kind} {name:?} does not exist"),
        );
    };
    let not_ready = &format!("{kind}NotReady");
    match parent.status().and_then(|s| s.condition("Ready")) {
        Some(ready) if ready.status == ConditionStatus::True => Condition::met(type_),
        Some(ready) => {
            let why = [ready.reason.as_deref(), ready.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            Condition::new(
                type_,
                ready.status,
                not_ready,
                format!("{kind} {name:?} is not ready: {why}"),
            )
        }
        None => Condition::new(
            type_,
            ConditionStatus::Unknown,
            not_ready,
            format!("{kind} {name:?} has not yet been reconciled"),
        ),
    }
}

/// A dead-letter sink as status reports it.
pub(super) struct DeadLetterSink {
    pub condition: Condition,
    pub uri: Option<String>,
}

impl DeadLetterSink {
    fn not_configured() -> Self {
        Self {
            condition: Condition::new(
                DEAD_LETTER_SINK_RESOLVED,
                ConditionStatus::True,
                "DeadLetterSinkNotConfigured",
                "No dead letter sink is configured.",
            ),
            uri: None,
        }
    }

    fn resolved(uri: String) -> Self {
        Self {
            condition: Condition::met(DEAD_LETTER_SINK_RESOLVED),
            uri: Some(uri),
        }
    }

    fn failed(message: String) -> Self {
        Self {
            condition: Condition::new(
                DEAD_LETTER_SINK_RESOLVED,
                ConditionStatus::False,
                DEAD_LETTER_SINK_RESOLVE_FAILED,
                message,
            ),
            uri: None,
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.condition.status == ConditionStatus::True
    }
}

/// The dead-letter sink of an object's own `delivery`, resolved in `namespace`.
pub(super) async fn own_dead_letter_sink(
    store: &TypedStore,
    delivery: Option<&DeliverySpec>,
    namespace: &str,
) -> Result<DeadLetterSink, StoreError> {
    let Some(sink) = delivery.and_then(|d| d.dead_letter_sink.as_ref()) else {
        return Ok(DeadLetterSink::not_configured());
    };
    Ok(match resolve_destination(store, sink, namespace).await? {
        Ok(uri) => DeadLetterSink::resolved(uri),
        Err(why) => DeadLetterSink::failed(format!(
            "Failed to resolve spec.delivery.deadLetterSink: {why}"
        )),
    })
}

/// A Trigger's or Subscription's dead-letter sink: its own `delivery` replaces its
/// Broker's or Channel's entirely; without one it dead-letters where the parent
/// does, at the URI the parent resolved (`status.deadLetterSinkUri`), as Knative
/// does.
pub(super) async fn dead_letter_sink<P: Served>(
    store: &TypedStore,
    own: Option<&DeliverySpec>,
    parent_name: &str,
    parent: Option<&P>,
    namespace: &str,
) -> Result<DeadLetterSink, StoreError> {
    if own.is_some() {
        return own_dead_letter_sink(store, own, namespace).await;
    }
    let Some(parent) =
        parent.filter(|p| p.delivery().is_some_and(|d| d.dead_letter_sink.is_some()))
    else {
        return Ok(DeadLetterSink::not_configured());
    };
    Ok(
        match parent.status().and_then(|s| s.dead_letter_sink_uri.clone()) {
            Some(uri) => DeadLetterSink::resolved(uri),
            None => DeadLetterSink::failed(format!(
                "{} {parent_name:?} did not set status.deadLetterSinkUri",
                P::kind(&())
            )),
        },
    )
}
