//! What the routing table holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::durable::LogHandle;
use crate::mesh::dispatch::Dispatcher;
use crate::mesh::filter::TriggerIndex;
use crate::resources::PayloadSchema;

#[derive(Default)]
pub struct RoutingTable {
    pub applications: HashMap<String, Arc<ApplicationRoute>>,
    /// By (namespace, name).
    pub brokers: HashMap<(String, String), Arc<BrokerRoute>>,
    /// By (namespace, name).
    pub channels: HashMap<(String, String), Arc<ChannelRoute>>,
    /// Subscriptions the table deliberately does not carry, by (namespace,
    /// name), with why: their status must not claim they are added to their
    /// Channel.
    pub unrouted: HashMap<(String, String), String>,
}

pub type Schemas = HashMap<(String, String), Arc<PayloadSchema>>;

pub struct ApplicationRoute {
    pub name: String,
    /// The Application's uid: a client certificate must have been issued to
    /// this Application, not to an earlier one of the same name.
    pub uid: String,
    /// The Application's Channel, once it exists and is served.
    pub channel: Option<ChannelTarget>,
    /// Payload schemas from the AsyncAPI document, by (event type, version).
    pub schemas: Arc<Schemas>,
}

pub enum ChannelTarget {
    /// Served here, by the embedded dataplane.
    Served(Arc<ChannelRoute>),
    /// Served by Knative at this address (`--dataplane knative`).
    Knative(Arc<str>),
}

pub struct ChannelRoute {
    pub namespace: String,
    pub name: String,
    /// The Application whose Channel this is: its events enter through the
    /// Application's ingress (credential, source, schema), not the Channel's.
    pub application: Option<String>,
    pub subscribers: Vec<ChannelSubscriber>,
    /// Durable delivery: where its ingress appends (its consumers read it).
    pub log: Option<LogHandle>,
    /// How many events it took in (each reaches every Broker subscribed):
    /// the console's rate on the Application → Channel → Broker edges.
    pub taken: Arc<AtomicU64>,
}

pub enum ChannelSubscriber {
    /// One of our Brokers: handed over in process, no HTTP hop.
    Broker(Arc<BrokerRoute>),
    /// Anything else, delivered over HTTP.
    Http(Arc<Dispatcher>),
}

pub struct BrokerRoute {
    pub namespace: String,
    pub name: String,
    pub triggers: TriggerIndex<Arc<Dispatcher>>,
    /// Durable delivery: where its ingress appends (its Triggers read it).
    pub log: Option<LogHandle>,
}

impl ChannelRoute {
    pub fn count_taken(&self, events: usize) {
        self.taken
            .fetch_add(events as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

impl RoutingTable {
    pub fn broker(&self, namespace: &str, name: &str) -> Option<&Arc<BrokerRoute>> {
        self.brokers.get(&(namespace.to_string(), name.to_string()))
    }

    pub fn why_unrouted(&self, namespace: &str, name: &str) -> Option<&str> {
        self.unrouted
            .get(&(namespace.to_string(), name.to_string()))
            .map(String::as_str)
    }

    pub fn channel(&self, namespace: &str, name: &str) -> Option<&Arc<ChannelRoute>> {
        self.channels
            .get(&(namespace.to_string(), name.to_string()))
    }
}
