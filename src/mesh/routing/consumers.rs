//! The embedded log's consumers as the routing table's builds keep them: a
//! Trigger's, an HTTP Subscription's and a relay's task runs while the object
//! is routed, beside its dispatcher, and is kept across builds like it; each
//! Broker log's shared reader runs while the log does, and each build of a
//! Broker hands it the index of its Triggers (`index`). After
//! each build, the cursors of consumers that stopped (their Trigger or
//! Subscription is gone or no longer routed) are dropped, and so are the logs
//! of Brokers and Channels that are gone; the first build also drops what was
//! deleted while meshbroker was down.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;

use super::opening::Opening;
use super::running::{Consumer, Running};
use crate::mesh::consume::{Feed, Group, Member, Solo, feed, read_shared, relay, trigger};
use crate::mesh::dispatch::Dispatcher;
use crate::mesh::filter::{Entry, Filter, TriggerIndex};
use crate::mesh::log::{EventLog, Log, LogKind, Owner, Start};
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

pub struct Embedded {
    event_log: Arc<EventLog>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    opening: Opening,
    /// Every consumer started, by cursor name; a dead entry is one that stopped.
    started: HashMap<String, Weak<Running>>,
    /// The logs of the last build's Brokers and Channels.
    logs: HashSet<String>,
    /// Each Broker log's shared reader, by log name.
    groups: HashMap<String, (Arc<Group>, Running)>,
    swept: bool,
}

impl Embedded {
    pub fn new(
        event_log: Arc<EventLog>,
        opening: Opening,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            event_log,
            metrics,
            shutdown,
            opening,
            started: HashMap::new(),
            logs: HashSet::new(),
            groups: HashMap::new(),
            swept: false,
        }
    }

    /// The log of a Broker or Channel; None (logged) if the file refused.
    pub fn log(&mut self, kind: LogKind, namespace: &str, name: &str) -> Option<Arc<Log>> {
        match self.event_log.log(kind, namespace, name) {
            Ok(log) => Some(log),
            Err(error) => {
                tracing::error!(%namespace, %name, %error, "no event log; not routed");
                None
            }
        }
    }

    pub fn trigger(
        &mut self,
        uid: &str,
        owner: Owner,
        log: &Arc<Log>,
        dispatcher: &Arc<Dispatcher>,
        filter: &Arc<Filter>,
        replay_from_ms: Option<i64>,
    ) -> Consumer {
        let consumer = format!("trigger/{uid}");
        let filter = Arc::new(ArcSwap::new(filter.clone()));
        let member = Member::new(dispatcher.clone());
        let solo = Solo {
            event_log: self.event_log.clone(),
            consumer: consumer.clone(),
            owner,
            start: replay_from_ms.map_or(Start::End, Start::Since),
            label: dispatcher.target().label.clone(),
            filter: filter.clone(),
            member: member.clone(),
            group: self.group(log),
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
        };
        let task = trigger(solo, self.opening.start());
        Consumer::new(self.start(&consumer, task), Some(filter), Some(member))
    }

    /// A Broker log's group, its shared reader started with it.
    fn group(&mut self, log: &Arc<Log>) -> Arc<Group> {
        let name = log.name().to_string();
        if let Some((group, _)) = self.groups.get(&name) {
            return group.clone();
        }
        let group = Group::new(log.clone());
        let task = read_shared(group.clone(), self.metrics.clone(), self.shutdown.clone());
        self.groups
            .insert(name, (group.clone(), Running::spawn(task)));
        group
    }

    /// A Broker's Triggers as its shared reader matches them.
    pub fn index(&mut self, log: &Arc<Log>, entries: Vec<Entry<Arc<Member>>>) {
        self.group(log).set_index(TriggerIndex::new(entries));
    }

    /// A Subscription delivering its Channel's events over HTTP.
    pub fn subscription(
        &mut self,
        uid: &str,
        owner: Owner,
        log: &Arc<Log>,
        dispatcher: &Arc<Dispatcher>,
    ) -> Consumer {
        let consumer = format!("subscription/{uid}");
        let feed_from = Feed {
            event_log: self.event_log.clone(),
            consumer: consumer.clone(),
            owner,
            log: log.clone(),
            dispatcher: dispatcher.clone(),
            shutdown: self.shutdown.clone(),
        };
        let task = feed(feed_from, self.opening.start());
        Consumer::new(self.start(&consumer, task), None, None)
    }

    /// A Subscription from a Channel to one of our Brokers.
    pub fn relay(&mut self, uid: &str, owner: Owner, from: &Arc<Log>, to: &Arc<Log>) -> Consumer {
        let consumer = format!("subscription/{uid}");
        let task = relay(
            self.event_log.clone(),
            consumer.clone(),
            owner,
            from.clone(),
            to.clone(),
            self.shutdown.clone(),
            self.opening.start(),
        );
        Consumer::new(self.start(&consumer, task), None, None)
    }

    fn start(
        &mut self,
        consumer: &str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Arc<Running> {
        let running = Arc::new(Running::spawn(task));
        self.started
            .insert(consumer.to_string(), Arc::downgrade(&running));
        running
    }

    /// After a build: drops the cursors of consumers that stopped, and the
    /// logs not in `logs`.
    pub fn sweep(&mut self, logs: HashSet<String>) {
        let before = self.started.len();
        self.started.retain(|_, running| running.strong_count() > 0);
        if !self.swept || self.started.len() != before {
            self.event_log
                .retain_cursors(self.started.keys().cloned().collect());
            self.swept = true;
        }
        if logs != self.logs {
            self.event_log.retain_logs(&logs);
            self.groups.retain(|name, _| logs.contains(name));
            self.logs = logs;
        }
    }
}
