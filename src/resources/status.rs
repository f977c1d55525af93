//! Status shapes more than one kind shares.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Addressable, Condition, ConditionStatus, Conditions};

// Broker and Channel publish the same status fields in Knative, so they share one
// type (and one status controller, src/controllers/readiness/addressable.rs).
/// The status of a Broker or Channel: where it takes events, its conditions and its
/// resolved dead-letter sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressableStatus {
    #[serde(default)]
    pub address: Addressable,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The resolved `spec.delivery.deadLetterSink`; Triggers and Subscriptions
    /// without a `delivery` of their own dead-letter here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// A Channel's Subscriptions and whether the dataplane delivers to each
    /// (Knative's `duckv1.SubscriberStatus`); a Broker has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberStatus>,
}

/// One Subscription of a Channel as the Channel's status lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberStatus {
    pub uid: String,
    /// The Subscription's generation this entry is of (the Knative
    /// specification's name for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The same, under the name Knative's own type gives it: both are
    /// written, so readers of either find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// "True" once the dataplane delivers to it (its `AddedToChannel`).
    pub ready: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Conditions for AddressableStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}
