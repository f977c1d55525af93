//! Writing a status: the store and settings every status controller shares,
//! whether the dataplane routes an object yet, and when to look again.

use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use kube::core::object::HasStatus;

use crate::controllers::MeshSettings;
use crate::controllers::runtime::Requeue;
use crate::resources::{
    AddressableStatus, ConditionStatus, Conditions, SubscriptionStatus, TriggerStatus, Typed,
};
use crate::store::{StoreError, TypedStore};

/// Unresolved destinations are looked at again this often, in case they appear.
const RECHECK: Duration = Duration::from_secs(10);
/// A Ready object whose destination is of a kind no controller hears of (a
/// Knative Service) is looked at again this often: its address may change.
const OTHER_KINDS_RECHECK: Duration = Duration::from_secs(30);
/// How soon to check again whether the dataplane routes an object yet.
const ROUTING_RECHECK: Duration = Duration::from_millis(20);

/// What a status controller needs of the status it writes.
pub(super) trait MeshStatus: Conditions + Clone + Default + PartialEq {
    fn observed_generation(&self) -> Option<i64>;
    fn observe(&mut self, generation: Option<i64>);
    /// Whether it reports the object routed: the condition about the dataplane
    /// serving it is True.
    fn routed(&self) -> bool;
}

macro_rules! mesh_status {
    ($($status:ty: $routed:expr),*) => {$(
        impl MeshStatus for $status {
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn observe(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn routed(&self) -> bool {
                $routed.iter().any(|type_| {
                    self.condition(type_)
                        .is_some_and(|c| c.status == ConditionStatus::True)
                })
            }
        }
    )*};
}

mesh_status!(
    AddressableStatus: ["IngressReady", "BackingChannelReady"],
    SubscriptionStatus: ["AddedToChannel"],
    TriggerStatus: ["SubscriptionReady"]
);

/// Whether the routing table routes an object as it was read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Routing {
    Routed,
    Waiting,
}

pub(super) struct StatusWriter {
    pub store: TypedStore,
    pub settings: Arc<MeshSettings>,
}

impl StatusWriter {
    /// Why the routing table of the moment leaves `subscription` out on purpose.
    pub fn why_unrouted(&self, subscription: &crate::resources::Subscription) -> Option<String> {
        let router = self.settings.dataplane.as_ref()?;
        let meta = &subscription.metadata;
        router
            .table()
            .why_unrouted(meta.namespace.as_deref()?, meta.name.as_deref()?)
            .map(str::to_string)
    }

    /// Whether the table routes `object` as read. `carried`: the object as read
    /// already holds the status fields routing uses (resolved URIs), so a table
    /// built from its revision routes it as it is. An object already reported
    /// routed for this generation with the same fields stays routed: its own
    /// status write must not send it back to waiting for a rebuild — also when it
    /// is not Ready for another reason (a dead-letter sink that does not resolve),
    /// where each write would otherwise undo the last, many times a second.
    pub fn routing<K>(&self, object: &K, carried: bool) -> Routing
    where
        K: Resource + HasStatus,
        K::Status: MeshStatus,
    {
        let meta = object.meta();
        let settled = object
            .status()
            .is_some_and(|s| s.routed() && s.observed_generation() == meta.generation);
        let routed = carried
            && (settled
                || self
                    .settings
                    .dataplane
                    .as_ref()
                    .is_none_or(|router| router.has_routed(meta.resource_version.as_deref())));
        if routed {
            Routing::Routed
        } else {
            Routing::Waiting
        }
    }

    /// Records the generation this status is of, writes it, and says when to look
    /// again:
    /// soon while only the routing table is awaited (`routing`: None when the
    /// object cannot be routed yet anyway), later while something does not resolve,
    /// and from time to time when Ready but `follows_other_kinds` (a destination
    /// read as a duck type, whose changes wake nothing here).
    pub async fn finish<K>(
        &self,
        object: K,
        mut status: K::Status,
        routing: Option<Routing>,
        follows_other_kinds: bool,
    ) -> Result<Requeue, StoreError>
    where
        K: Typed + HasStatus,
        K::Status: MeshStatus,
    {
        status.observe(object.meta().generation);
        let requeue = match (status.is_ready(), routing) {
            (true, _) if follows_other_kinds => Requeue::After(OTHER_KINDS_RECHECK),
            (true, _) => Requeue::Done,
            (false, Some(Routing::Waiting)) => Requeue::After(ROUTING_RECHECK),
            (false, _) => Requeue::After(RECHECK),
        };
        self.write(object, status).await?;
        Ok(requeue)
    }

    /// Writes `status` unless it is already there; a lost race is retried by the loop.
    pub async fn write<K>(&self, mut object: K, status: K::Status) -> Result<(), StoreError>
    where
        K: Typed + HasStatus,
        K::Status: PartialEq,
    {
        if object.status() != Some(&status) {
            *object.status_mut() = Some(status);
            self.store.replace_status(&object).await?;
        }
        Ok(())
    }

    pub fn events_url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.events_url)
    }
}
