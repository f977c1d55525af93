//! Our own Brokers and Channels as delivery destinations: events for them are
//! handed over in process through the routing table of the moment, not POSTed.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::mesh::event::PreparedEvent;

/// One of our own Brokers or Channels: a subscriber or reply destination that
/// is handed events in process instead of over HTTP (where it would need a
/// credential and cost a loopback exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Broker { namespace: String, name: String },
    Channel { namespace: String, name: String },
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broker { namespace, name } => write!(f, "Broker {namespace}/{name}"),
            Self::Channel { namespace, name } => write!(f, "Channel {namespace}/{name}"),
        }
    }
}

/// Why a local Broker or Channel did not take an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Full: like a 429, worth retrying.
    Overloaded,
    /// Not in the routing table (deleted, or not ready): like a 404.
    Gone,
}

/// Hands events to our own Brokers and Channels (replies, and subscribers that
/// are one of ours), through the routing table of the moment. Answers once the
/// Broker or Channel took the event as its own ingress would (with durable
/// delivery, once its log holds it).
pub trait LocalSink: Send + Sync + 'static {
    fn hand_over(
        &self,
        to: &Local,
        event: Arc<PreparedEvent>,
    ) -> BoxFuture<'static, Result<(), Refusal>>;
}
