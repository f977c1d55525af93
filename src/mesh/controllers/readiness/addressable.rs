//! Brokers and Channels: one status controller for both. Each gets its address on
//! the events listener, its resolved dead-letter sink, and the conditions Knative
//! reports for its kind (see the table in the module above).

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use kube::core::object::HasStatus;

use super::conditions::own_dead_letter_sink;
use super::writer::{Routing, StatusWriter};
use crate::mesh::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::resources::{
    AddressableStatus, Broker, Channel, Condition, ConditionStatus, Conditions, DeliverySpec, Typed,
};
use crate::store::StoreError;

/// What differs between a Broker and a Channel for their status.
pub(super) trait Served: Typed + HasStatus<Status = AddressableStatus> {
    /// Where the events listener takes its events.
    fn address_path(namespace: &str, name: &str) -> String;
    fn delivery(&self) -> Option<&DeliverySpec>;
    /// Why the embedded dataplane does not serve it, if it does not.
    fn refused(&self) -> Option<String>;
    /// Its kind's conditions about the dataplane serving it.
    fn serving_conditions(serving: Result<Routing, &str>) -> Vec<Condition>;
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
        let Some(object) = store.get::<K>(key.namespace.as_deref(), &key.name).await? else {
            return Ok(Requeue::Done);
        };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let mut status = object.status().cloned().unwrap_or_default();
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
            // Routing reads a Broker's or Channel's spec, never its status: the
            // object's revision is all the table has to reach.
            None => Ok(self.writer.routing(&object, true)),
        };
        let mut conditions = K::serving_conditions(serving);
        conditions.push(addressable);
        conditions.push(sink.condition);
        status.set_living_conditions(conditions);
        self.writer.finish(object, status, serving.ok()).await
    }
}
