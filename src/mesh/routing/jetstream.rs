//! JetStream's consumers as the routing table's builds keep them: each
//! Broker and Channel a `StreamLog` (its stream made or put right as it is
//! first used), each routed Trigger and HTTP Subscription a pull consumer's
//! task, kept across builds like its dispatcher.
//!
//! A Subscription from a Channel to one of our Brokers is wiring, not a
//! consumer: each Trigger of that Broker gets a consumer of its own on the
//! Channel's stream (named like its consumer on the Broker's stream), so a
//! Channel's event is stored once and read straight by the Triggers that
//! want it. A relay copying it into the Broker's stream cost a second stored
//! copy and four more NATS messages an event (measured: nats-server's CPU an
//! event −23 %, the subscriber's p99 at 2,000 events/s 10–19 → 5–6 ms
//! without it). A namespace that lags then holds the Channel's messages
//! (its own consumers have not taken them) — as the relay did once the
//! namespace's budget was full — and never another namespace's.
//!
//! After each build, the Trigger consumers on Channel streams are brought
//! to what the wiring and the Triggers ask; the JetStream consumers of
//! stopped tasks are deleted, and so are the streams of gone Channels and of
//! namespaces left without Brokers (a gone Broker's events are purged from
//! its namespace's stream); the first build also removes what was deleted
//! while meshbroker was down.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::opening::{Opening, OpeningGuard};
use super::running::{Consumer, Running};
use crate::locks::lock;
use crate::mesh::dispatch::Dispatcher;
use crate::mesh::filter::Filter;
use crate::mesh::jetstream::report::Owners;
use crate::mesh::jetstream::{
    ConsumerName, PullSettings, StreamLog, StreamSpec, Streams, names, pull,
};
use crate::mesh::log::{LogKind, Owner, Start};
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// A consumer on a stream: (stream, consumer).
type Placed = (String, ConsumerName);

/// A routed Trigger, as its consumers on Channel streams are made from it.
struct TriggerReader {
    /// Its Broker's log name.
    broker: String,
    dispatcher: Arc<Dispatcher>,
    /// Shared with its consumer on the Broker's stream: a changed filter
    /// reaches all of them.
    filter: Arc<ArcSwap<Filter>>,
    replay_from_ms: Option<i64>,
    /// Its consumer on the Broker's stream: it is routed while this runs.
    routed: Weak<Running>,
    /// Started since the last sweep: its first Channel consumers start where
    /// it does (a replay included); later ones at the Channel's end.
    fresh: bool,
}

/// A Subscription from a Channel to one of our Brokers, while it is held.
struct Wiring {
    channel: Arc<StreamLog>,
    broker: String,
    held: Weak<Running>,
}

pub struct JetStreamConsumers {
    streams: Arc<Streams>,
    opening: Opening,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    /// Every log handed out, by log name.
    logs: HashMap<String, (LogKind, String, String, Arc<StreamLog>)>,
    /// Every consumer started by a route; a dead entry is one that stopped.
    started: HashMap<Placed, Weak<Running>>,
    /// Routed Triggers by consumer name, and the wiring that decides which
    /// Channels they read.
    triggers: HashMap<ConsumerName, TriggerReader>,
    wirings: Vec<Wiring>,
    /// The Triggers' consumers on Channel streams.
    channel_readers: HashMap<Placed, Running>,
    /// Whose each started consumer is, for the metrics.
    owners: Owners,
    swept: bool,
    /// A Trigger or wiring came since the last sweep: the Channel readers
    /// are planned again only then (or when one went), not on every build.
    readers_changed: bool,
}

impl JetStreamConsumers {
    pub fn new(
        streams: Arc<Streams>,
        opening: Opening,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            streams,
            opening,
            metrics,
            shutdown,
            logs: HashMap::new(),
            started: HashMap::new(),
            triggers: HashMap::new(),
            wirings: Vec::new(),
            channel_readers: HashMap::new(),
            owners: Owners::default(),
            swept: false,
            readers_changed: false,
        }
    }

    /// Whose each consumer is, as `report` reads it.
    pub fn owners(&self) -> Owners {
        self.owners.clone()
    }

    pub fn log(&mut self, kind: LogKind, namespace: &str, name: &str) -> Arc<StreamLog> {
        let log_name = kind.name(namespace, name);
        if let Some((.., log)) = self.logs.get(&log_name) {
            return log.clone();
        }
        let budgets = self.streams.budgets;
        let (subject, stream) = match kind {
            LogKind::Broker => (
                names::broker_subject(namespace, name),
                StreamSpec::brokers(namespace, budgets),
            ),
            LogKind::Channel => (
                names::channel_subject(namespace, name),
                StreamSpec::channel(namespace, name, budgets),
            ),
        };
        let log = Arc::new(StreamLog::new(
            log_name.clone(),
            subject,
            stream.clone(),
            self.streams.js.clone(),
        ));
        tokio::spawn(ensure_stream(
            self.streams.clone(),
            stream,
            self.opening.start(),
            self.shutdown.clone(),
        ));
        self.logs.insert(
            log_name,
            (kind, namespace.to_string(), name.to_string(), log.clone()),
        );
        log
    }

    pub fn trigger(
        &mut self,
        uid: &str,
        owner: Owner,
        log: &Arc<StreamLog>,
        dispatcher: &Arc<Dispatcher>,
        filter: &Arc<Filter>,
        replay_from_ms: Option<i64>,
    ) -> Consumer {
        let filter = Arc::new(ArcSwap::new(filter.clone()));
        let name = ConsumerName::new("trigger", uid);
        let task = pull(self.settings(
            name.clone(),
            log,
            dispatcher,
            Some(filter.clone()),
            replay_from_ms.map_or(Start::End, Start::Since),
        ));
        let running = self.start(name.clone(), owner, log, task);
        self.triggers.insert(
            name,
            TriggerReader {
                broker: log.name.clone(),
                dispatcher: dispatcher.clone(),
                filter: filter.clone(),
                replay_from_ms,
                routed: Arc::downgrade(&running),
                fresh: true,
            },
        );
        self.readers_changed = true;
        Consumer::new(running, Some(filter), None)
    }

    pub fn subscription(
        &mut self,
        uid: &str,
        owner: Owner,
        log: &Arc<StreamLog>,
        dispatcher: &Arc<Dispatcher>,
    ) -> Consumer {
        let name = ConsumerName::new("subscription", uid);
        let task = pull(self.settings(name.clone(), log, dispatcher, None, Start::End));
        Consumer::new(self.start(name, owner, log, task), None, None)
    }

    /// A Subscription from a Channel to one of our Brokers: while the
    /// returned wiring is held, the Broker's Triggers read the Channel.
    pub fn wire(&mut self, channel: &Arc<StreamLog>, broker: &Arc<StreamLog>) -> Consumer {
        let held = Arc::new(Running::wiring());
        self.wirings.push(Wiring {
            channel: channel.clone(),
            broker: broker.name.clone(),
            held: Arc::downgrade(&held),
        });
        self.readers_changed = true;
        Consumer::new(held, None, None)
    }

    fn settings(
        &self,
        consumer: ConsumerName,
        log: &Arc<StreamLog>,
        dispatcher: &Arc<Dispatcher>,
        filter: Option<Arc<ArcSwap<Filter>>>,
        start: Start,
    ) -> PullSettings {
        PullSettings {
            streams: self.streams.clone(),
            stream: log.stream.clone(),
            subject: log.subject.clone(),
            consumer,
            start,
            dispatcher: dispatcher.clone(),
            filter,
            metrics: self.metrics.clone(),
            opening: self.opening.start(),
            shutdown: self.shutdown.clone(),
        }
    }

    fn start(
        &mut self,
        name: ConsumerName,
        owner: Owner,
        log: &Arc<StreamLog>,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Arc<Running> {
        let running = Arc::new(Running::spawn(task));
        lock(&self.owners).insert(name.to_string(), owner);
        self.started
            .insert((log.stream.name.clone(), name), Arc::downgrade(&running));
        running
    }

    /// The Triggers' consumers on Channel streams as the wiring and the
    /// routed Triggers now ask: the missing ones started, the others
    /// stopped (returned, to be deleted from JetStream).
    fn read_channels(&mut self) -> Vec<Placed> {
        let before = (self.triggers.len(), self.wirings.len());
        self.triggers
            .retain(|_, trigger| trigger.routed.strong_count() > 0);
        self.wirings.retain(|wiring| wiring.held.strong_count() > 0);
        let went = before != (self.triggers.len(), self.wirings.len());
        let came = std::mem::take(&mut self.readers_changed);
        if !went && !came {
            return Vec::new();
        }
        let mut wanted = HashMap::new();
        for wiring in &self.wirings {
            for (name, trigger) in &self.triggers {
                if trigger.broker == wiring.broker {
                    let placed = (wiring.channel.stream.name.clone(), name.clone());
                    wanted.insert(placed, (wiring.channel.clone(), name, trigger));
                }
            }
        }
        let mut stopped = Vec::new();
        self.channel_readers.retain(|placed, _| {
            let keep = wanted.contains_key(placed);
            if !keep {
                stopped.push(placed.clone());
            }
            keep
        });
        let mut started = Vec::new();
        for (placed, (channel, name, trigger)) in wanted {
            if self.channel_readers.contains_key(&placed) {
                continue;
            }
            let start = match trigger.replay_from_ms {
                Some(ms) if trigger.fresh => Start::Since(ms),
                _ => Start::End,
            };
            let settings = self.settings(
                name.clone(),
                &channel,
                &trigger.dispatcher,
                Some(trigger.filter.clone()),
                start,
            );
            started.push((placed, Running::spawn(pull(settings))));
        }
        self.channel_readers.extend(started);
        for trigger in self.triggers.values_mut() {
            trigger.fresh = false;
        }
        stopped
    }

    /// After a build (see the module notes). The deletions run in the
    /// background; one that fails is logged and done again by the next
    /// start's sweep.
    pub fn sweep(&mut self, logs: HashSet<String>) {
        let mut stopped = Vec::new();
        self.started.retain(|placed, running| {
            let alive = running.strong_count() > 0;
            if !alive {
                stopped.push(placed.clone());
            }
            alive
        });
        let mut owners = lock(&self.owners);
        for (_, name) in &stopped {
            owners.remove(name.as_str());
        }
        drop(owners);
        stopped.extend(self.read_channels());
        let mut gone = Vec::new();
        self.logs.retain(|log_name, (kind, namespace, name, _)| {
            let kept = logs.contains(log_name);
            if !kept {
                gone.push((*kind, namespace.clone(), name.clone()));
            }
            kept
        });
        let wanted_streams: HashSet<String> = self
            .logs
            .values()
            .map(|(.., log)| log.stream.name.clone())
            .collect();
        let wanted_consumers: HashSet<(String, String)> = self
            .started
            .keys()
            .chain(self.channel_readers.keys())
            .map(|(stream, name)| (stream.clone(), name.to_string()))
            .collect();
        let first = !self.swept;
        self.swept = true;
        if stopped.is_empty() && gone.is_empty() && !first {
            return;
        }
        let streams = self.streams.clone();
        tokio::spawn(async move {
            for (stream, consumer) in stopped {
                report(
                    streams.delete_consumer(&stream, consumer.as_str()).await,
                    consumer.as_str(),
                );
            }
            for (kind, namespace, name) in gone {
                let stream = match kind {
                    LogKind::Channel => names::channel_stream(&namespace, &name),
                    LogKind::Broker => names::broker_stream(&namespace),
                };
                if wanted_streams.contains(&stream) {
                    let subject = names::broker_subject(&namespace, &name);
                    report(streams.purge_subject(&stream, &subject).await, &stream);
                } else {
                    report(streams.delete(&stream).await, &stream);
                }
            }
            if first {
                remove_leftovers(&streams, &wanted_streams, &wanted_consumers).await;
            }
        });
    }
}

/// Makes a log's stream, trying again (with growing waits) while JetStream
/// is away; the log's ingress answers 503 until it is made.
async fn ensure_stream(
    streams: Arc<Streams>,
    stream: StreamSpec,
    mut opening: OpeningGuard,
    shutdown: Shutdown,
) {
    let mut wait = Duration::from_millis(200);
    loop {
        match streams.ensure(&stream).await {
            Ok(()) => return opening.done(),
            Err(error) => {
                tracing::warn!(stream = %stream.name, %error, "cannot set up the JetStream stream yet; trying again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.clone().wait() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// What was deleted while meshbroker was down: our streams no Broker or
/// Channel uses, and consumers no Trigger or Subscription does.
async fn remove_leftovers(
    streams: &Streams,
    wanted_streams: &HashSet<String>,
    wanted_consumers: &HashSet<(String, String)>,
) {
    let ours = match streams.ours().await {
        Ok(ours) => ours,
        Err(error) => {
            tracing::warn!(%error, "cannot list JetStream's streams; leftovers stay until the next start");
            return;
        }
    };
    for (stream, consumers) in ours {
        if !wanted_streams.contains(&stream) {
            report(streams.delete(&stream).await, &stream);
            continue;
        }
        let leftover = |c: &&String| !wanted_consumers.contains(&(stream.clone(), c.to_string()));
        for consumer in consumers.iter().filter(leftover) {
            report(streams.delete_consumer(&stream, consumer).await, consumer);
        }
    }
}

fn report(result: Result<(), async_nats::Error>, what: &str) {
    if let Err(error) = result {
        tracing::warn!(%what, %error, "cannot remove it from JetStream");
    }
}
