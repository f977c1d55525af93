//! What differs between a Broker and a Channel for their status: where each is
//! addressed and which of its kind's conditions say the dataplane serves it.

use kube::core::object::HasStatus;

use super::writer::Routing;
use crate::resources::{
    AddressableStatus, Broker, Channel, Condition, ConditionStatus, DeliverySpec, SubscriberSpec,
    Typed,
};

/// What differs between a Broker and a Channel for their status.
pub(super) trait Served: Typed + HasStatus<Status = AddressableStatus> {
    /// Where the events listener takes its events.
    fn address_path(namespace: &str, name: &str) -> String;
    fn delivery(&self) -> Option<&DeliverySpec>;
    /// Why the embedded dataplane does not serve it, if it does not.
    fn refused(&self) -> Option<String>;
    /// Whether its status is ours to write (a Broker of another class is its
    /// implementation's).
    fn is_ours(&self) -> bool {
        true
    }
    /// Its kind's conditions about the dataplane serving it.
    fn serving_conditions(serving: Result<Routing, &str>) -> Vec<Condition>;
    /// Whether it lists its Subscriptions (`spec.subscribers` and
    /// `status.subscribers`).
    const LISTS_SUBSCRIBERS: bool;
    /// Sets its `spec.subscribers`; whether that changed anything.
    fn set_subscribers(&mut self, subscribers: &[SubscriberSpec]) -> bool;
}

/// `type_` True once routed, Unknown while the table is awaited, False (with
/// `reason`) when the dataplane does not serve the object.
fn serving(type_: &str, serving: Result<Routing, &str>, reason: &str) -> Condition {
    match serving {
        Ok(Routing::Routed) => Condition::met(type_),
        Ok(Routing::Waiting) => Condition::new(
            type_,
            ConditionStatus::Unknown,
            "Routing",
            "waiting for the dataplane to route it",
        ),
        Err(why) => Condition::new(type_, ConditionStatus::False, reason, why),
    }
}

impl Served for Broker {
    fn address_path(namespace: &str, name: &str) -> String {
        format!("{namespace}/{name}")
    }

    fn delivery(&self) -> Option<&DeliverySpec> {
        self.spec.delivery.as_ref()
    }

    fn refused(&self) -> Option<String> {
        None
    }

    fn is_ours(&self) -> bool {
        self.is_embedded_class()
    }

    const LISTS_SUBSCRIBERS: bool = false;

    fn set_subscribers(&mut self, _subscribers: &[SubscriberSpec]) -> bool {
        false
    }

    /// A Broker's route in the table is its ingress, its trigger fan-out (in
    /// process: there is no trigger Channel object) and its filters at once, so
    /// the three conditions of Knative's channel-based Broker move together.
    fn serving_conditions(routing: Result<Routing, &str>) -> Vec<Condition> {
        ["IngressReady", "TriggerChannelReady", "FilterReady"]
            .into_iter()
            .map(|type_| serving(type_, routing, "NotServed"))
            .collect()
    }
}

impl Served for Channel {
    fn address_path(namespace: &str, name: &str) -> String {
        format!("channels/{namespace}/{name}")
    }

    fn delivery(&self) -> Option<&DeliverySpec> {
        self.spec.delivery.as_ref()
    }

    fn refused(&self) -> Option<String> {
        self.spec.unsupported_reason()
    }

    const LISTS_SUBSCRIBERS: bool = true;

    fn set_subscribers(&mut self, subscribers: &[SubscriberSpec]) -> bool {
        if self.spec.subscribers == subscribers {
            return false;
        }
        self.spec.subscribers = subscribers.to_vec();
        true
    }

    /// Knative's Channel reports its backing channel (an InMemoryChannel, say)
    /// as `BackingChannelReady`; here the embedded dataplane backs it.
    fn serving_conditions(routing: Result<Routing, &str>) -> Vec<Condition> {
        vec![serving(
            "BackingChannelReady",
            routing,
            "UnsupportedChannel",
        )]
    }
}
