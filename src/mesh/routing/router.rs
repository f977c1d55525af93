//! Admitting events: an event is queued for every subscriber it must reach, or,
//! where that is impossible, handled by the overflow policy:
//!
//! 1. A subscriber whose queue (or whose namespace's budget) is full sends the
//!    event straight to its dead-letter sink, when it has one — once the request
//!    commits, so a refused request dead-letters nothing.
//! 2. Otherwise, at a Broker's own ingress, the whole request is refused (429):
//!    nothing is queued, the sender retries.
//! 3. Fanning out from a Channel (an Application's events), a full subscriber must
//!    not hold back the others, in its namespace or any other: the event is queued
//!    for every subscriber (every matching Trigger of every Broker) with room;
//!    where there is none, it is counted and logged as undeliverable. Only when no
//!    subscriber that wants the event has room is the request refused (429): a
//!    namespace whose Triggers all filter the event out is no place for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::table::{BrokerRoute, ChannelRoute, ChannelSubscriber, RoutingTable};
use futures::future::BoxFuture;

use super::durable::{LogHandle, Origin};
use super::opening::Opening;
use crate::mesh::dispatch::{Dispatcher, Local, LocalSink, Refusal, Reservation};
use crate::mesh::event::PreparedEvent;
use crate::mesh::forward::Forwarder;
use crate::mesh::log::AppendError;
use crate::mesh::tap::Taps;
use crate::telemetry::{Metrics, Throttle, shortened};

static MISSED_LOG: Throttle = Throttle::new();

/// Too much is queued: the sender should retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

pub struct Router {
    table: ArcSwap<RoutingTable>,
    ready: AtomicBool,
    /// The store revision the current table was built from.
    revision: AtomicU64,
    /// What the current table started and is not open yet.
    pub opening: Opening,
    metrics: Arc<Metrics>,
    /// Hands Application events to Knative Channels (`--dataplane knative`).
    pub forwarder: Forwarder,
    /// The Brokers' live tails.
    pub taps: Arc<Taps>,
}

/// Reservations for every Trigger of `broker` matching `event`; None if one is
/// refused (the reservations already made are released when dropped).
fn admit_to_broker(
    broker: &BrokerRoute,
    event: &Arc<PreparedEvent>,
    held: &mut Vec<(Reservation, Arc<PreparedEvent>)>,
    metrics: &Metrics,
) -> Option<()> {
    let mut taken = Vec::new();
    for dispatcher in broker.triggers.matching(&event.event, metrics) {
        taken.push((dispatcher.try_reserve()?, event.clone()));
    }
    held.extend(taken);
    Some(())
}

impl Router {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            table: ArcSwap::from_pointee(RoutingTable::default()),
            ready: AtomicBool::new(false),
            revision: AtomicU64::new(0),
            opening: Opening::default(),
            metrics,
            forwarder: Forwarder::default(),
            taps: Arc::default(),
        }
    }

    pub fn table(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// Swaps in a table built from the store as of `revision`.
    pub fn install(&self, table: RoutingTable, revision: u64) {
        self.table.store(Arc::new(table));
        self.advance(revision);
        self.ready.store(true, Ordering::Release);
    }

    /// The table in place reflects the store as of `revision` too: nothing it
    /// is built from changed since (only, say, conditions in a status).
    pub fn advance(&self, revision: u64) {
        self.revision.fetch_max(revision, Ordering::AcqRel);
    }

    /// Whether the current table reflects an object as of `resource_version`:
    /// status controllers report Ready only once it does, so "Ready" means
    /// "events route to it now" (and so waits for what the table started
    /// to be open, see `Opening`).
    pub fn has_routed(&self, resource_version: Option<&str>) -> bool {
        let wanted = resource_version
            .and_then(|rv| rv.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        self.revision.load(Ordering::Acquire) >= wanted && self.opening.is_idle()
    }

    /// True once the first table is in.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Events arriving at a Broker, for its live tail: told before they are
    /// taken in, and again with the `refusal` when they were not.
    pub fn tap_broker(
        &self,
        broker: &BrokerRoute,
        events: &[Arc<PreparedEvent>],
        via: impl FnOnce() -> String,
        refusal: Option<&str>,
    ) {
        self.taps.arriving(
            &broker.namespace,
            &broker.name,
            via,
            events.iter().map(|e| &**e),
            |event| broker.triggers.names_matching(event, &self.metrics),
            refusal,
        );
    }

    /// Events arriving at a Channel: every Broker it feeds (through a
    /// Subscription, in process or through its log) receives them.
    pub fn tap_channel(
        &self,
        channel: &ChannelRoute,
        events: &[Arc<PreparedEvent>],
        refusal: Option<&str>,
    ) {
        if self.taps.idle() {
            return;
        }
        for subscriber in &channel.subscribers {
            if let ChannelSubscriber::Broker(broker) = subscriber {
                let via = || format!("channel {}/{}", channel.namespace, channel.name);
                self.tap_broker(broker, events, via, refusal);
            }
        }
    }

    /// A Broker's ingress: every event to every matching Trigger, or nothing.
    pub fn send_to_broker(
        &self,
        broker: &BrokerRoute,
        events: &[Arc<PreparedEvent>],
    ) -> Result<(), Overloaded> {
        let mut held = Vec::new();
        for event in events {
            admit_to_broker(broker, event, &mut held, &self.metrics).ok_or(Overloaded)?;
        }
        for (reservation, event) in held {
            reservation.send(event);
        }
        self.metrics.events_accepted(events.len());
        Ok(())
    }

    /// Durable delivery's ingress: the events into a Broker's or Channel's
    /// log, whole or not at all (the embedded log; JetStream stores a batch
    /// event by event, and a sender's retry is not stored twice).
    pub async fn append(
        &self,
        log: &LogHandle,
        events: &[Arc<PreparedEvent>],
        origin: Origin,
    ) -> Result<(), AppendError> {
        match log.append(events, origin).await {
            Ok(()) => {
                self.metrics.events_accepted(events.len());
                Ok(())
            }
            Err(error) => {
                self.metrics.event_rejected();
                Err(error)
            }
        }
    }

    /// A Channel's fan-out: each subscriber gets what fits (see the module notes).
    pub fn send_to_channel(
        &self,
        channel: &ChannelRoute,
        events: &[Arc<PreparedEvent>],
    ) -> Result<(), Overloaded> {
        let mut held = Vec::new();
        let mut missed = Vec::new();
        for event in events {
            let mut wanted = false;
            let mut taken = false;
            let mut offer = |dispatcher: &Arc<Dispatcher>| {
                wanted = true;
                match dispatcher.try_reserve() {
                    Some(reservation) => {
                        held.push((reservation, event.clone()));
                        taken = true;
                    }
                    None => missed.push((event.clone(), dispatcher.clone())),
                }
            };
            for subscriber in &channel.subscribers {
                match subscriber {
                    ChannelSubscriber::Broker(broker) => broker
                        .triggers
                        .matching(&event.event, &self.metrics)
                        .for_each(&mut offer),
                    ChannelSubscriber::Http(dispatcher) => offer(dispatcher),
                }
            }
            if wanted && !taken {
                return Err(Overloaded);
            }
        }
        for (event, subscriber) in missed {
            self.metrics.event_undeliverable();
            if let Some(skipped) = MISSED_LOG.allow() {
                tracing::warn!(channel = %format!("{}/{}", channel.namespace, channel.name), subscriber = %subscriber.target().label,
                    event_id = ?shortened(event.event_id()), skipped,
                    "subscriber full (queue and namespace budget); the event did not reach it");
            }
        }
        for (reservation, event) in held {
            reservation.send(event);
        }
        self.metrics.events_accepted(events.len());
        Ok(())
    }
}

/// Hands events to our own Brokers and Channels through the table of the
/// moment, without holding the router alive.
pub struct LocalDelivery(pub std::sync::Weak<Router>);

impl LocalSink for LocalDelivery {
    fn hand_over(
        &self,
        to: &Local,
        event: Arc<PreparedEvent>,
    ) -> BoxFuture<'static, Result<(), Refusal>> {
        let router = self.0.upgrade();
        let to = to.clone();
        Box::pin(async move {
            let router = router.ok_or(Refusal::Gone)?;
            router.hand_over(&to, event).await
        })
    }
}

impl Router {
    async fn hand_over(&self, to: &Local, event: Arc<PreparedEvent>) -> Result<(), Refusal> {
        let table = self.table();
        let events = std::slice::from_ref(&event);
        let refused = |refusal: Refusal| match refusal {
            Refusal::Overloaded => "full: the sender tries again later",
            Refusal::Gone => "not routed",
        };
        match to {
            Local::Broker { namespace, name } => {
                let route = table.broker(namespace, name).ok_or(Refusal::Gone)?;
                self.tap_broker(route, events, || "mesh".into(), None);
                let taken = match &route.log {
                    Some(log) => self.append_local(to, log, events).await,
                    None => self
                        .send_to_broker(route, events)
                        .map_err(|Overloaded| Refusal::Overloaded),
                };
                if let Err(refusal) = taken {
                    let reason = refused(refusal);
                    self.tap_broker(route, events, || "mesh".into(), Some(reason));
                }
                taken
            }
            Local::Channel { namespace, name } => {
                let route = table.channel(namespace, name).ok_or(Refusal::Gone)?;
                self.tap_channel(route, events, None);
                let taken = match &route.log {
                    Some(log) => self.append_local(to, log, events).await,
                    None => self
                        .send_to_channel(route, events)
                        .map_err(|Overloaded| Refusal::Overloaded),
                };
                match taken {
                    Ok(()) => route.count_taken(events.len()),
                    Err(refusal) => self.tap_channel(route, events, Some(refused(refusal))),
                }
                taken
            }
        }
    }

    /// A full log, or one whose file refused, is worth trying again later.
    async fn append_local(
        &self,
        to: &Local,
        log: &LogHandle,
        events: &[Arc<PreparedEvent>],
    ) -> Result<(), Refusal> {
        self.append(log, events, Origin::Mesh)
            .await
            .map_err(|error| {
                match &error {
                    AppendError::Failed(error) => {
                        tracing::error!(%to, %error, "cannot append to the log")
                    }
                    AppendError::Unavailable(why) => {
                        tracing::warn!(%to, %why, "cannot append to the log now")
                    }
                    AppendError::TooLarge(why) => {
                        tracing::error!(%to, %why, "cannot append to the log")
                    }
                    AppendError::Full(_) => {}
                }
                Refusal::Overloaded
            })
    }
}

#[cfg(test)]
mod tests;
