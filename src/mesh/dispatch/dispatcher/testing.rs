//! Dispatchers for the dataplane's unit tests (the pool's, the router's, the
//! ingress's), on paused time and without sockets: the subscriber's address is
//! one the transport refuses before any I/O (`http://no such host/` is not a
//! URI), so a delivery is a failed attempt that costs no real time; given a
//! `busy` time it retries once after that backoff, so it lasts exactly that long
//! in virtual time. An event is done when its claim is given back (`InFlight`).

use std::sync::Arc;
use std::time::Duration;

use super::{Budget, Dispatcher, DispatcherSettings};
use crate::mesh::dispatch::{
    DeliveryPolicy, DispatchDeps, InFlight, Local, LocalSink, Refusal, Target, client_config,
};
use crate::mesh::event::PreparedEvent;
use crate::resources::BackoffPolicy;
use crate::telemetry::Metrics;

/// An address no delivery reaches, refused without I/O.
const NOWHERE: &str = "http://no such host/";

/// No Broker or Channel of ours to hand events to.
struct NoLocals;

impl LocalSink for NoLocals {
    fn hand_over(
        &self,
        _: &Local,
        _: Arc<PreparedEvent>,
    ) -> futures::future::BoxFuture<'static, Result<(), Refusal>> {
        Box::pin(std::future::ready(Err(Refusal::Gone)))
    }
}

pub fn deps() -> Arc<DispatchDeps> {
    Arc::new(DispatchDeps {
        local: Arc::new(NoLocals),
        subscriber_tls: client_config(None).expect("the system's roots load"),
        in_flight: InFlight::default(),
        metrics: Metrics::new(),
        taps: Default::default(),
        runtime: tokio::runtime::Handle::current(),
    })
}

pub fn event(ty: &str) -> Arc<PreparedEvent> {
    use cloudevents::{EventBuilder, EventBuilderV10};
    let event = EventBuilderV10::new()
        .id("1")
        .ty(ty)
        .source("test")
        .build()
        .expect("a valid event");
    Arc::new(PreparedEvent::new(event))
}

/// How many of `events_total{outcome}` the metrics counted.
pub fn outcomes(metrics: &Metrics, outcome: &str) -> u64 {
    let series = format!("meshbroker_events_total{{outcome=\"{outcome}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.parse().ok())
        .unwrap_or(0)
}

/// Places left in the dispatcher's queue.
pub fn room(dispatcher: &Dispatcher) -> usize {
    dispatcher.places.available_permits()
}

pub struct TestDispatcher {
    label: String,
    busy: Duration,
    settings: DispatcherSettings,
    dead_letter_sink: bool,
    budget: Option<Arc<Budget>>,
}

impl Dispatcher {
    /// Queue of 8, one worker, deliveries that take no time, no dead-letter
    /// sink, a namespace budget of its own.
    pub fn test(label: &str) -> TestDispatcher {
        TestDispatcher {
            label: label.to_string(),
            busy: Duration::ZERO,
            settings: DispatcherSettings {
                queue_capacity: 8,
                queue_bytes: usize::MAX,
                concurrency: 1,
            },
            dead_letter_sink: false,
            budget: None,
        }
    }
}

impl TestDispatcher {
    /// Every delivery (to the subscriber or the dead-letter sink) lasts `busy`.
    pub fn busy(mut self, busy: Duration) -> Self {
        self.busy = busy;
        self
    }

    pub fn queue(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity;
        self
    }

    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.settings.queue_bytes = bytes;
        self
    }

    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency;
        self
    }

    /// With a dead-letter sink (as unreachable as the subscriber).
    pub fn dead_letter(mut self) -> Self {
        self.dead_letter_sink = true;
        self
    }

    /// Sharing a namespace's budget.
    pub fn budget(mut self, budget: &Arc<Budget>) -> Self {
        self.budget = Some(budget.clone());
        self
    }

    pub fn spawn(self, deps: &Arc<DispatchDeps>) -> Arc<Dispatcher> {
        let target = Target {
            label: self.label,
            subscriber: NOWHERE.into(),
            local: None,
            dead_letter_local: None,
            policy: DeliveryPolicy {
                retry: u32::from(!self.busy.is_zero()),
                backoff_policy: BackoffPolicy::Linear,
                backoff_delay: self.busy,
                dead_letter_sink: self.dead_letter_sink.then(|| NOWHERE.into()),
                ..DeliveryPolicy::default()
            },
            structured: false,
            reply_to: None,
            tap: None,
        };
        let budget = self.budget.unwrap_or_else(|| Budget::of_events(1024));
        Dispatcher::spawn(target, self.settings, budget, deps.clone())
    }
}
