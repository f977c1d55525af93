//! A subscriber's `Dispatcher`: a bounded queue and a concurrency limit of its own.
//! Admission is a two-step reservation so an event is either taken by every
//! subscriber that must get it or by none (the ingress then answers 429).
//! Dispatchers outlive routing-table rebuilds; a removed one drains its queue.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc};

use super::delivery::deliver;
use super::prepared::PreparedEvent;
use super::{DeliveryPolicy, InFlight, ReplySink, Transport};
use crate::telemetry::Metrics;

/// Where and how a dispatcher delivers; replaced in place when its Trigger changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `namespace/name` of the Trigger or Subscription, for logs.
    pub label: String,
    pub subscriber: String,
    pub policy: DeliveryPolicy,
    /// Structured mode instead of binary.
    pub structured: bool,
    /// The Broker replies go back to.
    pub reply_to: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy)]
pub struct DispatcherSettings {
    pub queue_capacity: usize,
    pub concurrency: usize,
}

/// What every dispatcher shares.
pub struct DispatchDeps {
    pub transport: Arc<dyn Transport>,
    pub replies: Arc<dyn ReplySink>,
    pub in_flight: InFlight,
    pub metrics: Arc<Metrics>,
}

pub struct Dispatcher {
    target: Arc<ArcSwap<Target>>,
    queue: mpsc::Sender<Arc<PreparedEvent>>,
    in_flight: InFlight,
}

/// A place held in a dispatcher's queue.
pub struct Reservation {
    permit: mpsc::OwnedPermit<Arc<PreparedEvent>>,
    in_flight: InFlight,
}

/// Proof that an event was queued.
pub struct Enqueued;

impl Reservation {
    pub fn send(self, event: Arc<PreparedEvent>) -> Enqueued {
        self.in_flight.start();
        self.permit.send(event);
        Enqueued
    }
}

impl Dispatcher {
    pub fn spawn(
        target: Target,
        settings: DispatcherSettings,
        deps: Arc<DispatchDeps>,
    ) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let target = Arc::new(ArcSwap::from_pointee(target));
        tokio::spawn(work(
            receiver,
            target.clone(),
            settings.concurrency.max(1),
            deps.clone(),
        ));
        Arc::new(Self {
            target,
            queue,
            in_flight: deps.in_flight.clone(),
        })
    }

    pub fn target(&self) -> Arc<Target> {
        self.target.load_full()
    }

    /// Points the dispatcher at a changed subscriber or policy; queued events
    /// go to the new one.
    pub fn retarget(&self, target: Target) {
        if *self.target.load_full() != target {
            self.target.store(Arc::new(target));
        }
    }

    /// A place in the queue, or None when it is full.
    pub fn try_reserve(&self) -> Option<Reservation> {
        let permit = self.queue.clone().try_reserve_owned().ok()?;
        Some(Reservation {
            permit,
            in_flight: self.in_flight.clone(),
        })
    }
}

async fn work(
    mut receiver: mpsc::Receiver<Arc<PreparedEvent>>,
    target: Arc<ArcSwap<Target>>,
    concurrency: usize,
    deps: Arc<DispatchDeps>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    while let Some(event) = receiver.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let target = target.load_full();
        let deps = deps.clone();
        tokio::spawn(async move {
            deliver(&deps, &target, &event).await;
            deps.in_flight.finish();
            drop(slot);
        });
    }
}
