//! Durable delivery as the routing table's builds see it, whichever engine
//! keeps the logs: the embedded SQLite log (`consumers`) or JetStream
//! (`jetstream`). A build asks for each Broker's and Channel's log (which
//! its ingress appends to) and starts a consumer for each routed Trigger and
//! Subscription; both engines answer the same calls.

use std::collections::HashSet;
use std::sync::Arc;

use super::consumers::Embedded;
use super::jetstream::JetStreamConsumers;
use super::running::Consumer;
use crate::mesh::consume::Member;
use crate::mesh::dispatch::Dispatcher;
use crate::mesh::event::PreparedEvent;
use crate::mesh::filter::{Entry, Filter};
use crate::mesh::jetstream::StreamLog;
use crate::mesh::log::{AppendError, Log, LogKind, Owner};

pub enum Durable {
    Embedded(Embedded),
    JetStream(JetStreamConsumers),
}

/// Who hands events to a log, which decides whether a repeat is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A sender outside, through an ingress: a retry of the same event
    /// (`source` and `id`) within JetStream's duplicate window is stored once.
    Sender,
    /// The mesh itself: a reply, a dead letter or a Trigger's event passed to
    /// one of our Brokers or Channels. These often keep the `source` and `id`
    /// of the event they came from and must not be taken for it.
    Mesh,
}

/// Where a Broker's or Channel's ingress appends.
#[derive(Clone)]
pub enum LogHandle {
    Embedded(Arc<Log>),
    JetStream(Arc<StreamLog>),
}

impl LogHandle {
    pub fn name(&self) -> &str {
        match self {
            Self::Embedded(log) => log.name(),
            Self::JetStream(log) => &log.name,
        }
    }

    /// Appends `events`; answered once they are stored (as the engine keeps
    /// them), or refused.
    pub async fn append(
        &self,
        events: &[Arc<PreparedEvent>],
        origin: Origin,
    ) -> Result<(), AppendError> {
        match self {
            Self::Embedded(log) => log.append(events).await,
            Self::JetStream(log) => log.append(events, origin == Origin::Sender).await,
        }
    }
}

/// A consumer asked for on a log of the other engine: cannot happen, as every
/// log comes from the same `Durable`; logged rather than trusted.
fn mismatched(consumer: &str) -> Option<Consumer> {
    tracing::error!(%consumer, "a consumer was asked for on another engine's log; not started");
    None
}

impl Durable {
    /// The log of a Broker or Channel; None (logged) if the engine refused.
    pub fn log(&mut self, kind: LogKind, namespace: &str, name: &str) -> Option<LogHandle> {
        match self {
            Self::Embedded(embedded) => {
                embedded.log(kind, namespace, name).map(LogHandle::Embedded)
            }
            Self::JetStream(jetstream) => {
                Some(LogHandle::JetStream(jetstream.log(kind, namespace, name)))
            }
        }
    }

    pub fn trigger(
        &mut self,
        uid: &str,
        owner: Owner,
        log: &LogHandle,
        dispatcher: &Arc<Dispatcher>,
        filter: &Arc<Filter>,
        replay_from_ms: Option<i64>,
    ) -> Option<Consumer> {
        match (self, log) {
            (Self::Embedded(embedded), LogHandle::Embedded(log)) => {
                Some(embedded.trigger(uid, owner, log, dispatcher, filter, replay_from_ms))
            }
            (Self::JetStream(jetstream), LogHandle::JetStream(log)) => {
                Some(jetstream.trigger(uid, owner, log, dispatcher, filter, replay_from_ms))
            }
            _ => mismatched(uid),
        }
    }

    /// A Broker's Triggers as its shared reader matches them (the embedded
    /// log reads a Broker's log once for all its Triggers).
    pub fn index(&mut self, log: &LogHandle, entries: Vec<Entry<Arc<Member>>>) {
        if let (Self::Embedded(embedded), LogHandle::Embedded(log)) = (self, log) {
            embedded.index(log, entries);
        }
    }

    /// A Subscription delivering its Channel's events over HTTP.
    pub fn subscription(
        &mut self,
        uid: &str,
        owner: Owner,
        log: &LogHandle,
        dispatcher: &Arc<Dispatcher>,
    ) -> Option<Consumer> {
        match (self, log) {
            (Self::Embedded(embedded), LogHandle::Embedded(log)) => {
                Some(embedded.subscription(uid, owner, log, dispatcher))
            }
            (Self::JetStream(jetstream), LogHandle::JetStream(log)) => {
                Some(jetstream.subscription(uid, owner, log, dispatcher))
            }
            _ => mismatched(uid),
        }
    }

    /// A Subscription from a Channel to one of our Brokers: the embedded log
    /// relays the Channel's events into the Broker's log; JetStream has the
    /// Broker's Triggers read the Channel's stream.
    pub fn channel_to_broker(
        &mut self,
        uid: &str,
        owner: Owner,
        from: &LogHandle,
        to: &LogHandle,
    ) -> Option<Consumer> {
        match (self, from, to) {
            (Self::Embedded(embedded), LogHandle::Embedded(from), LogHandle::Embedded(to)) => {
                Some(embedded.relay(uid, owner, from, to))
            }
            (Self::JetStream(jetstream), LogHandle::JetStream(from), LogHandle::JetStream(to)) => {
                Some(jetstream.wire(from, to))
            }
            _ => mismatched(uid),
        }
    }

    /// After a build: drops what stopped consumers and gone logs left.
    pub fn sweep(&mut self, logs: HashSet<String>) {
        match self {
            Self::Embedded(embedded) => embedded.sweep(logs),
            Self::JetStream(jetstream) => jetstream.sweep(logs),
        }
    }
}
