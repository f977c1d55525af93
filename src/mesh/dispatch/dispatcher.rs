//! A subscriber's `Dispatcher`: a bounded queue and a concurrency limit of its own.
//! Admission is a two-step reservation so an event is either taken by every
//! subscriber that must get it or by none (the ingress then answers 429).
//! Dispatchers outlive routing-table rebuilds; a removed one drains its queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc};

use super::delivery::{dead_letter_overflow, deliver};
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

/// A namespace's share of the dataplane: how many events may wait or be in
/// delivery across all of its subscribers at once.
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    fn try_claim(self: &Arc<Self>, in_flight: &InFlight) -> Option<Claim> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            if used >= self.limit {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => used = actual,
            }
        }
        in_flight.start();
        Some(Claim {
            budget: self.clone(),
            in_flight: in_flight.clone(),
        })
    }
}

/// One event's hold on its namespace's budget and on the drain counter; released
/// when the delivery (retries and dead-lettering included) is over.
pub struct Claim {
    budget: Arc<Budget>,
    in_flight: InFlight,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(1, Ordering::AcqRel);
        self.in_flight.finish();
    }
}

/// What every dispatcher shares.
pub struct DispatchDeps {
    pub transport: Arc<dyn Transport>,
    pub replies: Arc<dyn ReplySink>,
    pub in_flight: InFlight,
    pub metrics: Arc<Metrics>,
}

type Queued = (Arc<PreparedEvent>, Claim);

/// At least this many overflowing events may be on their way to the dead-letter
/// sink at once, however small the queue.
const OVERFLOW_SLOTS: usize = 16;

pub struct Dispatcher {
    target: Arc<ArcSwap<Target>>,
    queue: mpsc::Sender<Queued>,
    budget: Arc<Budget>,
    /// Bounds the dead-letter deliveries of events that found the queue full.
    overflow_slots: Arc<Semaphore>,
    deps: Arc<DispatchDeps>,
}

/// A place held in a dispatcher's queue and in its namespace's budget.
pub struct Reservation {
    permit: mpsc::OwnedPermit<Queued>,
    claim: Claim,
}

impl Reservation {
    pub fn send(self, event: Arc<PreparedEvent>) {
        self.permit.send((event, self.claim));
    }
}

impl Dispatcher {
    pub fn spawn(
        target: Target,
        settings: DispatcherSettings,
        budget: Arc<Budget>,
        deps: Arc<DispatchDeps>,
    ) -> Arc<Self> {
        let capacity = settings.queue_capacity.max(1);
        let (queue, receiver) = mpsc::channel(capacity);
        let target = Arc::new(ArcSwap::from_pointee(target));
        let concurrency = settings.concurrency.max(1);
        tokio::spawn(work(receiver, target.clone(), concurrency, deps.clone()));
        Arc::new(Self {
            target,
            queue,
            budget,
            overflow_slots: Arc::new(Semaphore::new(capacity.max(OVERFLOW_SLOTS))),
            deps,
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

    /// A place in the queue, or None when the queue or the namespace's budget is full.
    pub fn try_reserve(&self) -> Option<Reservation> {
        let permit = self.queue.clone().try_reserve_owned().ok()?;
        let claim = self.budget.try_claim(&self.deps.in_flight)?;
        Some(Reservation { permit, claim })
    }

    /// The overflow policy for a full queue: the event goes straight to the
    /// dead-letter sink (as a 429 from the queue). False when there is no sink
    /// or the overflow is itself full; the caller then refuses the event.
    pub fn overflow_to_dead_letter(&self, event: Arc<PreparedEvent>) -> bool {
        let target = self.target.load_full();
        if target.policy.dead_letter_sink.is_none() {
            return false;
        }
        let Ok(slot) = self.overflow_slots.clone().try_acquire_owned() else {
            return false;
        };
        let deps = self.deps.clone();
        deps.in_flight.start();
        tokio::spawn(async move {
            dead_letter_overflow(&deps, &target, &event).await;
            deps.in_flight.finish();
            drop(slot);
        });
        true
    }
}

async fn work(
    mut receiver: mpsc::Receiver<Queued>,
    target: Arc<ArcSwap<Target>>,
    concurrency: usize,
    deps: Arc<DispatchDeps>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    while let Some((event, claim)) = receiver.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let target = target.load_full();
        let deps = deps.clone();
        tokio::spawn(async move {
            deliver(&deps, &target, &event).await;
            drop(claim);
            drop(slot);
        });
    }
}
