//! A subscriber's `Dispatcher`: a bounded queue and at most `concurrency`
//! delivery workers of its own, so one slow or failing subscriber holds back only
//! itself. Workers start when events wait and no worker is free, each with its own
//! keep-alive connection, and stop after a quiet spell. The most recently idle
//! worker takes the next event (a stack, not a queue, of idle workers): under
//! steady load a few hot workers do the work and the rest time out, so the pool
//! sizes itself to what the subscriber needs. Admission is a
//! reservation (a queue place and a share of the namespace's budget), so an event
//! is either taken by every subscriber that must get it or by none. Dispatchers
//! outlive routing-table rebuilds; a removed one drains its queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::delivery::{Sessions, dead_letter_overflow, deliver};
use super::prepared::PreparedEvent;
use super::{DeliveryPolicy, InFlight, Local, LocalSink};
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
    /// The subscriber's URI (what `knativeerrordest` names).
    pub subscriber: String,
    /// Set when the subscriber is one of our Brokers or Channels: events are
    /// handed over in process rather than POSTed to `subscriber`.
    pub local: Option<Local>,
    /// The same for the dead-letter sink.
    pub dead_letter_local: Option<Local>,
    pub policy: DeliveryPolicy,
    /// Structured mode instead of binary.
    pub structured: bool,
    /// Where replies go: a Trigger's back into its Broker, a Subscription's to
    /// its `spec.reply`; none: a reply is ignored.
    pub reply_to: Option<ReplyTo>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyTo {
    Local(Local),
    Url(String),
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
    pub local: Arc<dyn LocalSink>,
    /// Whom https:// subscribers, reply destinations and dead-letter sinks are
    /// trusted as; built once.
    pub subscriber_tls: Arc<rustls::ClientConfig>,
    pub in_flight: InFlight,
    pub metrics: Arc<Metrics>,
}

/// A queued event with its place in the queue and its budget claim.
struct Queued {
    event: Arc<PreparedEvent>,
    _place: OwnedSemaphorePermit,
    _claim: Claim,
}

/// The queue and the workers draining it.
struct Lanes {
    queue: Mutex<VecDeque<Queued>>,
    /// Parked workers, most recently parked last.
    idle: Mutex<Vec<Arc<Notify>>>,
    running: AtomicUsize,
    /// The dispatcher is gone: workers finish the queue and stop.
    closed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing held under these locks can be left half-done by a panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Dispatcher {
    target: Arc<ArcSwap<Target>>,
    /// Places in the queue; the queue itself is unbounded.
    places: Arc<Semaphore>,
    lanes: Arc<Lanes>,
    concurrency: usize,
    budget: Arc<Budget>,
    /// Bounds the dead-letter deliveries of events that found the queue full.
    overflow_slots: Arc<Semaphore>,
    deps: Arc<DispatchDeps>,
}

/// What admitting an event to a subscriber holds until the request commits:
/// a place in its queue and its namespace's budget, or, when those are full, a
/// slot to send the event straight to its dead-letter sink (the overflow
/// policy). Dropped uncommitted, it gives everything back.
pub enum Reservation {
    Queue {
        dispatcher: Arc<Dispatcher>,
        place: OwnedSemaphorePermit,
        claim: Claim,
    },
    DeadLetter {
        dispatcher: Arc<Dispatcher>,
        slot: OwnedSemaphorePermit,
    },
}

impl Reservation {
    /// Commits: queues the event (starting a worker if none is free), or sends
    /// it on to the dead-letter sink.
    pub fn send(self, event: Arc<PreparedEvent>) {
        match self {
            Reservation::Queue {
                dispatcher,
                place,
                claim,
            } => {
                dispatcher.enqueue(Queued {
                    event,
                    _place: place,
                    _claim: claim,
                });
            }
            Reservation::DeadLetter { dispatcher, slot } => {
                let target = dispatcher.target.load_full();
                let deps = dispatcher.deps.clone();
                deps.in_flight.start();
                tokio::spawn(async move {
                    dead_letter_overflow(&deps, &target, &event, &mut Sessions::new(&deps)).await;
                    deps.in_flight.finish();
                    drop(slot);
                });
            }
        }
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
        let lanes = Lanes {
            queue: Mutex::new(VecDeque::new()),
            idle: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        };
        Arc::new(Self {
            target: Arc::new(ArcSwap::from_pointee(target)),
            places: Arc::new(Semaphore::new(capacity)),
            lanes: Arc::new(lanes),
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

    /// A place in the queue; when the queue or the namespace's budget is full, a
    /// slot towards the dead-letter sink if there is one; otherwise None.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        if let Ok(place) = self.places.clone().try_acquire_owned()
            && let Some(claim) = self.budget.try_claim(&self.deps.in_flight)
        {
            return Some(Reservation::Queue {
                dispatcher: self.clone(),
                place,
                claim,
            });
        }
        // No sink: a full queue refuses the event.
        self.target.load().policy.dead_letter_sink.as_ref()?;
        let slot = self.overflow_slots.clone().try_acquire_owned().ok()?;
        Some(Reservation::DeadLetter {
            dispatcher: self.clone(),
            slot,
        })
    }

    fn enqueue(&self, queued: Queued) {
        let lanes = &self.lanes;
        lock(&lanes.queue).push_back(queued);
        if let Some(worker) = lock(&lanes.idle).pop() {
            worker.notify_one();
            return;
        }
        if lanes.running.fetch_add(1, Ordering::AcqRel) < self.concurrency {
            tokio::spawn(work(lanes.clone(), self.target.clone(), self.deps.clone()));
        } else {
            // Every worker is busy; one takes this event when it is done.
            lanes.running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.lanes.closed.store(true, Ordering::Release);
        for worker in lock(&self.lanes.idle).drain(..) {
            worker.notify_one();
        }
    }
}

enum Next {
    Event(Queued),
    Park,
    Stop,
}

impl Lanes {
    /// The next event; or, holding the idle stack so no enqueue slips past,
    /// the decision to park (registering `me`) or to stop.
    fn next(&self, me: &Arc<Notify>) -> Next {
        if let Some(queued) = lock(&self.queue).pop_front() {
            return Next::Event(queued);
        }
        let mut idle = lock(&self.idle);
        if let Some(queued) = lock(&self.queue).pop_front() {
            return Next::Event(queued);
        }
        if self.closed.load(Ordering::Acquire) {
            return Next::Stop;
        }
        idle.push(me.clone());
        Next::Park
    }

    /// Leaves the idle stack after waking from a quiet spell; false if an enqueue
    /// had already taken this worker off it (an event is meant for it).
    fn unpark(&self, me: &Arc<Notify>) -> bool {
        let mut idle = lock(&self.idle);
        match idle.iter().position(|w| Arc::ptr_eq(w, me)) {
            Some(at) => {
                idle.remove(at);
                true
            }
            None => false,
        }
    }
}

async fn work(lanes: Arc<Lanes>, target: Arc<ArcSwap<Target>>, deps: Arc<DispatchDeps>) {
    let me = Arc::new(Notify::new());
    let mut sessions = Sessions::new(&deps);
    loop {
        match lanes.next(&me) {
            Next::Event(queued) => {
                let target = target.load_full();
                deliver(&deps, &target, &queued.event, &mut sessions).await;
            }
            Next::Stop => break,
            Next::Park => {
                let woken = tokio::time::timeout(WORKER_IDLE, me.notified())
                    .await
                    .is_ok();
                // Quiet for a while: stop, unless work arrived as the wait ended.
                if !woken && lanes.unpark(&me) && lock(&lanes.queue).is_empty() {
                    break;
                }
            }
        }
    }
    lanes.running.fetch_sub(1, Ordering::AcqRel);
}
