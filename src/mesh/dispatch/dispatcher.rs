//! A subscriber's `Dispatcher`: a bounded queue and at most `concurrency`
//! delivery workers of its own, so one slow or failing subscriber holds back only
//! itself. Workers start when events wait and no worker is free, each with its own
//! keep-alive connection, and stop after a quiet spell. Admission is a
//! reservation (a queue place and a share of the namespace's budget), so an event
//! is either taken by every subscriber that must get it or by none. Dispatchers
//! outlive routing-table rebuilds; a removed one drains its queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::delivery::{Sessions, dead_letter_overflow, deliver};
use super::prepared::PreparedEvent;
use super::{DeliveryPolicy, InFlight, ReplySink};
use crate::telemetry::Metrics;

/// A worker with nothing to do for this long stops (and closes its connection).
const WORKER_IDLE: Duration = Duration::from_secs(30);

/// At least this many overflowing events may be on their way to the dead-letter
/// sink at once, however small the queue.
const OVERFLOW_SLOTS: usize = 16;

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
    pub replies: Arc<dyn ReplySink>,
    pub in_flight: InFlight,
    pub metrics: Arc<Metrics>,
}

/// A queued event with its place in the queue and its budget claim.
struct Queued {
    event: Arc<PreparedEvent>,
    _place: OwnedSemaphorePermit,
    _claim: Claim,
}

struct Workers {
    running: AtomicUsize,
    idle: AtomicUsize,
}

pub struct Dispatcher {
    target: Arc<ArcSwap<Target>>,
    /// Places in the queue; the channel itself is unbounded.
    places: Arc<Semaphore>,
    sender: async_channel::Sender<Queued>,
    receiver: async_channel::Receiver<Queued>,
    workers: Arc<Workers>,
    concurrency: usize,
    budget: Arc<Budget>,
    /// Bounds the dead-letter deliveries of events that found the queue full.
    overflow_slots: Arc<Semaphore>,
    deps: Arc<DispatchDeps>,
}

/// A place held in a dispatcher's queue and in its namespace's budget.
pub struct Reservation {
    dispatcher: Arc<Dispatcher>,
    place: OwnedSemaphorePermit,
    claim: Claim,
}

impl Reservation {
    /// Queues the event in the place held, starting a worker if none is free.
    pub fn send(self, event: Arc<PreparedEvent>) {
        let Reservation {
            dispatcher,
            place,
            claim,
        } = self;
        dispatcher.enqueue(Queued {
            event,
            _place: place,
            _claim: claim,
        });
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
        let (sender, receiver) = async_channel::unbounded();
        Arc::new(Self {
            target: Arc::new(ArcSwap::from_pointee(target)),
            places: Arc::new(Semaphore::new(capacity)),
            sender,
            receiver,
            workers: Arc::new(Workers {
                running: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }),
            concurrency: settings.concurrency.max(1),
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
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        let place = self.places.clone().try_acquire_owned().ok()?;
        let claim = self.budget.try_claim(&self.deps.in_flight)?;
        Some(Reservation {
            dispatcher: self.clone(),
            place,
            claim,
        })
    }

    fn enqueue(&self, queued: Queued) {
        // The receiver lives as long as the dispatcher: sending cannot fail.
        let _ = self.sender.try_send(queued);
        let workers = &self.workers;
        if workers.idle.load(Ordering::Acquire) == 0 {
            let running = workers.running.fetch_add(1, Ordering::AcqRel);
            if running < self.concurrency {
                tokio::spawn(work(
                    self.receiver.clone(),
                    self.target.clone(),
                    workers.clone(),
                    self.deps.clone(),
                ));
            } else {
                workers.running.fetch_sub(1, Ordering::AcqRel);
            }
        }
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
            dead_letter_overflow(&deps, &target, &event, &mut Sessions::default()).await;
            deps.in_flight.finish();
            drop(slot);
        });
        true
    }
}

async fn work(
    receiver: async_channel::Receiver<Queued>,
    target: Arc<ArcSwap<Target>>,
    workers: Arc<Workers>,
    deps: Arc<DispatchDeps>,
) {
    let mut sessions = Sessions::default();
    loop {
        workers.idle.fetch_add(1, Ordering::AcqRel);
        let next = tokio::time::timeout(WORKER_IDLE, receiver.recv()).await;
        workers.idle.fetch_sub(1, Ordering::AcqRel);
        match next {
            Ok(Ok(queued)) => {
                let target = target.load_full();
                deliver(&deps, &target, &queued.event, &mut sessions).await;
            }
            // The dispatcher is gone and its queue is drained.
            Ok(Err(_closed)) => break,
            // Quiet: stop, unless an event arrived as the wait ended.
            Err(_idle) if receiver.is_empty() => break,
            Err(_idle) => {}
        }
    }
    workers.running.fetch_sub(1, Ordering::AcqRel);
}
