//! Where and how a dispatcher delivers: the subscriber, the delivery policy and
//! where replies go. Built by the routing table, read by every delivery.

use super::local::Local;
use super::policy::DeliveryPolicy;
use crate::mesh::tap::TapPoint;

/// Where and how a dispatcher delivers; replaced in place when its Trigger changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `namespace/name` of the Trigger or Subscription, for logs.
    pub label: String,
    /// The subscriber's URI (what `knativeerrordest` names).
    pub subscriber: String,
    /// Set when the subscriber is one of our Brokers or Channels: events are
    /// handed over in process rather than POSTed to `subscriber`.
    pub local: Option<Local>,
    /// The same for the dead-letter sink.
    pub dead_letter_local: Option<Local>,
    pub policy: DeliveryPolicy,
    /// Structured mode instead of binary.
    pub structured: bool,
    /// Where replies go: a Trigger's back into its Broker, a Subscription's to
    /// its `spec.reply`; none: a reply is ignored.
    pub reply_to: Option<ReplyTo>,
    /// A Trigger's: its Broker's tail hears how each delivery ended.
    pub tap: Option<TapPoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyTo {
    /// One of our Brokers or Channels, and its address (what
    /// `knativeerrordest` names when it refuses a reply).
    Local {
        to: Local,
        address: String,
    },
    Url(String),
}

impl ReplyTo {
    pub fn address(&self) -> &str {
        match self {
            Self::Local { address, .. } | Self::Url(address) => address,
        }
    }
}
