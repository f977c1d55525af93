//! The live tail of a Broker: what arrives at it (with the Triggers whose
//! filters let each event through; told as it arrives, and followed by a
//! `REFUSED` record when it was not taken in after all) and how each
//! Trigger's delivery ended — delivered, dead-lettered with its
//! `knativeerror*` reasons, or given up.
//! People watch it to see why a Trigger did or did not fire; the console's
//! Events page and `meshbroker tail` read it.
//!
//! It costs the event path one atomic load while nobody watches anything.
//! While someone watches, a Broker's records go to a bounded broadcast
//! channel: a watcher that reads more slowly than events pass skips what it
//! missed and is told how many it skipped (sampled under load, never holding
//! back delivery). Records are built only for watched Brokers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use cloudevents::{AttributesReader, Event};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::locks::{read, write};
use crate::mesh::event::PreparedEvent;

/// How many records a watcher may fall behind before it skips.
const WATCHER_BACKLOG: usize = 512;
/// An event's data larger than this (as JSON) is left out of its record.
const DATA_SHOWN: usize = 4096;

/// The Trigger a dispatcher delivers for, so its outcomes reach its Broker's tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapPoint {
    pub namespace: String,
    pub broker: String,
    pub trigger: String,
}

/// One line of a tail.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TapRecord {
    /// An event arrived at the Broker.
    #[serde(rename_all = "camelCase")]
    Received {
        time: String,
        /// `ingress` (the Broker's own), `channel <namespace>/<name>` (an
        /// Application's events through a Subscription), or `mesh` (a reply,
        /// or a Trigger whose subscriber is this Broker).
        via: String,
        /// The Triggers whose filters let it through, by name.
        triggers: Vec<String>,
        /// The event in CloudEvents' JSON format.
        event: Value,
        /// Set when the data was too large to show: its size as JSON.
        #[serde(skip_serializing_if = "Option::is_none")]
        data_omitted: Option<usize>,
    },
    /// An event told as received was not taken in: its sender was refused
    /// (and may send it again).
    #[serde(rename_all = "camelCase")]
    Refused {
        time: String,
        via: String,
        id: String,
        source: String,
        reason: String,
    },
    /// A Trigger's subscriber took the event.
    #[serde(rename_all = "camelCase")]
    Delivered {
        time: String,
        trigger: String,
        id: String,
        source: String,
        status: u16,
    },
    /// Out of attempts: the event went to the dead-letter sink with these reasons.
    #[serde(rename_all = "camelCase")]
    DeadLettered {
        time: String,
        trigger: String,
        id: String,
        source: String,
        sink: String,
        knativeerrordest: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        knativeerrorcode: Option<u16>,
        /// The reason as text (the subscriber's answer, or why there was none).
        reason: String,
    },
    /// Out of attempts and no dead-letter sink took it.
    #[serde(rename_all = "camelCase")]
    Undeliverable {
        time: String,
        trigger: String,
        id: String,
        source: String,
        reason: String,
    },
    /// The watcher read too slowly: this many records passed unseen.
    Skipped { count: u64 },
}

/// How a Trigger's delivery ended, for its Broker's tail.
pub enum Outcome<'a> {
    Delivered {
        status: u16,
    },
    DeadLettered {
        sink: &'a str,
        /// The subscriber that failed (`knativeerrordest`).
        dest: &'a str,
        code: Option<u16>,
        reason: &'a str,
    },
    Undeliverable {
        reason: &'a str,
    },
}

type Channels = HashMap<String, HashMap<String, broadcast::Sender<Arc<TapRecord>>>>;

/// Every watched Broker's channel, by namespace and name.
#[derive(Default)]
pub struct Taps {
    watchers: AtomicUsize,
    brokers: RwLock<Channels>,
}

/// One watcher of one Broker; stops counting when dropped.
pub struct Tail {
    taps: Arc<Taps>,
    namespace: String,
    broker: String,
    receiver: broadcast::Receiver<Arc<TapRecord>>,
}

impl Tail {
    /// The next record, a `Skipped` one after a lag; None once the taps are gone.
    pub async fn next(&mut self) -> Option<Arc<TapRecord>> {
        match self.receiver.recv().await {
            Ok(record) => Some(record),
            Err(broadcast::error::RecvError::Lagged(count)) => {
                Some(Arc::new(TapRecord::Skipped { count }))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let mut brokers = write(&self.taps.brokers);
        if let Some(namespace) = brokers.get_mut(&self.namespace) {
            // Our receiver still counts until this drop ends.
            if namespace
                .get(&self.broker)
                .is_some_and(|sender| sender.receiver_count() <= 1)
            {
                namespace.remove(&self.broker);
            }
            if namespace.is_empty() {
                brokers.remove(&self.namespace);
            }
        }
        self.taps.watchers.fetch_sub(1, Ordering::Release);
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Taps {
    /// Starts watching a Broker (it need not exist yet).
    pub fn watch(self: &Arc<Self>, namespace: &str, broker: &str) -> Tail {
        let mut brokers = write(&self.brokers);
        let sender = brokers
            .entry(namespace.to_string())
            .or_default()
            .entry(broker.to_string())
            .or_insert_with(|| broadcast::channel(WATCHER_BACKLOG).0);
        let receiver = sender.subscribe();
        self.watchers.fetch_add(1, Ordering::Release);
        Tail {
            taps: self.clone(),
            namespace: namespace.to_string(),
            broker: broker.to_string(),
            receiver,
        }
    }

    /// True while nobody watches any Broker.
    pub fn idle(&self) -> bool {
        self.watchers.load(Ordering::Acquire) == 0
    }

    /// The channel of a watched Broker; None (after one atomic load when
    /// nobody watches anything) for the others.
    fn watched(&self, namespace: &str, broker: &str) -> Option<broadcast::Sender<Arc<TapRecord>>> {
        if self.idle() {
            return None;
        }
        read(&self.brokers).get(namespace)?.get(broker).cloned()
    }

    /// Events arriving at a Broker (`matching` names the Triggers each
    /// passes), told before they are taken in so that no delivery is told
    /// before its arrival; or, with a `refusal`, that the Broker (or the
    /// Channel before it) did not take them after all.
    pub fn arriving<'e>(
        &self,
        namespace: &str,
        broker: &str,
        via: impl FnOnce() -> String,
        events: impl IntoIterator<Item = &'e PreparedEvent>,
        matching: impl Fn(&Event) -> Vec<String>,
        refusal: Option<&str>,
    ) {
        let Some(sender) = self.watched(namespace, broker) else {
            return;
        };
        let via = via();
        for event in events {
            let record = match refusal {
                None => {
                    let (event_json, data_omitted) = shown(event);
                    TapRecord::Received {
                        time: now(),
                        via: via.clone(),
                        triggers: matching(&event.event),
                        event: event_json,
                        data_omitted,
                    }
                }
                Some(reason) => TapRecord::Refused {
                    time: now(),
                    via: via.clone(),
                    id: event.event.id().to_string(),
                    source: event.event.source().to_string(),
                    reason: reason.to_string(),
                },
            };
            // No receiver left: the last watcher just went.
            let _ = sender.send(Arc::new(record));
        }
    }

    /// How a Trigger's delivery of `event` ended.
    pub fn outcome(&self, point: &TapPoint, event: &Event, outcome: Outcome<'_>) {
        let Some(sender) = self.watched(&point.namespace, &point.broker) else {
            return;
        };
        let (time, trigger) = (now(), point.trigger.clone());
        let (id, source) = (event.id().to_string(), event.source().to_string());
        let record = match outcome {
            Outcome::Delivered { status } => TapRecord::Delivered {
                time,
                trigger,
                id,
                source,
                status,
            },
            Outcome::DeadLettered {
                sink,
                dest,
                code,
                reason,
            } => TapRecord::DeadLettered {
                time,
                trigger,
                id,
                source,
                sink: sink.to_string(),
                knativeerrordest: dest.to_string(),
                knativeerrorcode: code,
                reason: reason.to_string(),
            },
            Outcome::Undeliverable { reason } => TapRecord::Undeliverable {
                time,
                trigger,
                id,
                source,
                reason: reason.to_string(),
            },
        };
        let _ = sender.send(Arc::new(record));
    }
}

/// The event as JSON (its structured form, which a structured delivery
/// reuses), without its data when that is too large to show.
fn shown(event: &PreparedEvent) -> (Value, Option<usize>) {
    let mut json: Value = serde_json::from_slice(event.structured_body()).unwrap_or(Value::Null);
    let size = ["data", "data_base64"]
        .iter()
        .filter_map(|field| json.get(*field))
        .map(|data| data.to_string().len())
        .sum::<usize>();
    if size <= DATA_SHOWN {
        return (json, None);
    }
    if let Some(fields) = json.as_object_mut() {
        fields.remove("data");
        fields.remove("data_base64");
    }
    (json, Some(size))
}

#[cfg(test)]
mod tests;
