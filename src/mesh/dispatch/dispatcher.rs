//! A subscriber's `Dispatcher`: a bounded queue and at most `concurrency`
//! delivery workers of its own, so one slow or failing subscriber holds back only
//! itself. Workers start when events wait and no worker is free, each with its own
//! keep-alive connection, and stop after a quiet spell. The most recently idle
//! worker takes the next event (a stack, not a queue, of idle workers): under
//! steady load a few hot workers do the work and the rest time out, so the pool
//! sizes itself to what the subscriber needs. The queue, the idle stack and the
//! worker count change together under one lock, which is what keeps an event
//! from being stranded (see `Pool`). Admission is a
//! reservation (a queue place and a share of the namespace's budget), so an event
//! is either taken by every subscriber that must get it or by none. Dispatchers
//! outlive routing-table rebuilds; a removed one drains its queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::budget::{Budget, Claim, QueueBytes};
use super::delivery::{Ended, Sessions, dead_letter_overflow, deliver};
use super::deps::DispatchDeps;
use super::settle::Settled;
use super::target::Target;
use crate::mesh::event::PreparedEvent;

/// A worker with nothing to do for this long stops (and closes its connection).
const WORKER_IDLE: Duration = Duration::from_secs(30);

/// At least this many overflowing events may be on their way to the dead-letter
/// sink at once, however small the queue.
const OVERFLOW_SLOTS: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct DispatcherSettings {
    pub queue_capacity: usize,
    /// Bytes of events the queue (and its deliveries) may hold.
    pub queue_bytes: usize,
    pub concurrency: usize,
}

/// A queued event with its place in the queue and its budget claim.
struct Queued {
    event: Arc<PreparedEvent>,
    settled: Option<Settled>,
    _place: OwnedSemaphorePermit,
    _claim: Claim,
}

/// A subscriber's queue and the workers draining it, read and changed only
/// under one lock, one short critical section per step.
///
/// Why no event is stranded (no lost wake-up): whenever the lock is free, **if
/// the queue holds an event, some worker is awake** (counted in `running`, not
/// on the idle stack) and will take the lock again before it can park or stop.
/// Every step keeps this true:
/// - `push` queues the event and, in the same critical section, takes the most
///   recently parked worker off the stack to wake it, or counts a new worker to
///   spawn, or else finds all `running` workers (at least one) awake;
/// - `next` parks a worker, or stops it and gives back its place in `running`,
///   only in a critical section that found the queue empty;
/// - a worker taken off the stack counts as awake before it runs: `notify_one`
///   keeps the wake-up if the worker is not waiting yet, and a worker whose wait
///   timed out meanwhile finds itself off the stack and looks at the queue.
///
/// So an event waits only while every worker is busy with earlier ones. (What
/// this replaced stopped a worker in two steps, deciding with the queue empty
/// and giving back its place later: an event queued in between found no worker
/// to wake and no room to start one, and waited for the next event.)
struct Pool {
    queue: VecDeque<Queued>,
    /// Parked workers, most recently parked last.
    idle: Vec<Arc<Worker>>,
    /// Workers alive: delivering, looking at the queue, or parked.
    running: usize,
    concurrency: usize,
    /// The dispatcher is gone: workers finish the queue and stop.
    closed: bool,
}

/// A delivery worker as the pool knows it.
struct Worker {
    wake: Notify,
    /// On the idle stack. Read and written only under the pool's lock, which
    /// orders it; an atomic only because the worker is shared across threads.
    parked: AtomicBool,
}

/// What an enqueue must do once it has let go of the lock.
enum Wake {
    Parked(Arc<Worker>),
    Spawn,
    /// Every worker is awake; one takes the event when it is done.
    Busy,
}

enum Next {
    Event(Queued),
    /// Wait for a wake-up or the end of the quiet spell, then ask again.
    Wait,
    Stop,
}

impl Pool {
    fn new(concurrency: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            idle: Vec::new(),
            running: 0,
            concurrency,
            closed: false,
        }
    }

    fn push(&mut self, queued: Queued) -> Wake {
        self.queue.push_back(queued);
        if let Some(worker) = self.idle.pop() {
            worker.parked.store(false, Ordering::Relaxed);
            return Wake::Parked(worker);
        }
        if self.running < self.concurrency {
            self.running += 1;
            return Wake::Spawn;
        }
        Wake::Busy
    }

    /// What `me` does next: asked when it starts, after each delivery, and when
    /// its wait ends (`quiet` when its quiet spell ran out rather than woken).
    fn next(&mut self, me: &Arc<Worker>, quiet: bool) -> Next {
        if me.parked.load(Ordering::Relaxed) {
            if !quiet {
                // Still on the stack, so no enqueue woke it: the wake-up was
                // kept from one that raced an earlier timeout. Wait on.
                return Next::Wait;
            }
            self.idle.retain(|worker| !Arc::ptr_eq(worker, me));
            me.parked.store(false, Ordering::Relaxed);
        }
        if let Some(queued) = self.queue.pop_front() {
            return Next::Event(queued);
        }
        if quiet || self.closed {
            // Cannot underflow: `me` is one of them.
            self.running = self.running.saturating_sub(1);
            return Next::Stop;
        }
        me.parked.store(true, Ordering::Relaxed);
        self.idle.push(me.clone());
        Next::Wait
    }

    /// The dispatcher is gone: the parked workers, taken off the stack, to wake
    /// (they stop once the queue is empty).
    fn close(&mut self) -> Vec<Arc<Worker>> {
        self.closed = true;
        for worker in &self.idle {
            worker.parked.store(false, Ordering::Relaxed);
        }
        std::mem::take(&mut self.idle)
    }
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
    bytes: Arc<QueueBytes>,
    pool: Arc<Mutex<Pool>>,
    budget: Arc<Budget>,
    /// Bounds the dead-letter deliveries of events that found the queue full.
    overflow_slots: Arc<Semaphore>,
    deps: Arc<DispatchDeps>,
    counts: Arc<Counts>,
}

/// How this subscriber's deliveries ended so far: what the console's edge
/// rates are computed from. One counter pair per subscriber, bumped by its
/// own workers only.
#[derive(Debug, Default)]
pub struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn count(&self, ended: Ended) {
        let counter = match ended {
            Ended::Delivered => &self.delivered,
            Ended::Failed => &self.failed,
            Ended::HandedBack => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// (delivered, dead-lettered or given up)
    pub fn read(&self) -> (u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
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
        self.send_settled(event, None);
    }

    /// Commits, and tells `settled` once the event's delivery is over. Not
    /// told if the process stops first: the event is then delivered again.
    pub fn send_settled(self, event: Arc<PreparedEvent>, settled: Option<Settled>) {
        match self {
            Reservation::Queue {
                dispatcher,
                place,
                mut claim,
            } => {
                claim.charge(event.weight());
                dispatcher.enqueue(Queued {
                    event,
                    settled,
                    _place: place,
                    _claim: claim,
                });
            }
            Reservation::DeadLetter { dispatcher, slot } => {
                let target = dispatcher.target.load_full();
                let deps = dispatcher.deps.clone();
                dispatcher.counts.count(Ended::Failed);
                deps.in_flight.start();
                let runtime = deps.runtime.clone();
                runtime.spawn(async move {
                    dead_letter_overflow(&deps, &target, &event, &mut Sessions::new(&deps)).await;
                    if let Some(settled) = settled {
                        settled.by.settle(settled.seq);
                    }
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
        Arc::new(Self {
            target: Arc::new(ArcSwap::from_pointee(target)),
            places: Arc::new(Semaphore::new(capacity)),
            bytes: QueueBytes::new(settings.queue_bytes),
            pool: Arc::new(Mutex::new(Pool::new(settings.concurrency.max(1)))),
            budget,
            overflow_slots: Arc::new(Semaphore::new(capacity.max(OVERFLOW_SLOTS))),
            deps,
            counts: Arc::default(),
        })
    }

    pub fn target(&self) -> Arc<Target> {
        self.target.load_full()
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
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
        if let Some(queued) = self.try_reserve_place() {
            return Some(queued);
        }
        // No sink: a full queue refuses the event.
        self.target.load().policy.dead_letter_sink.as_ref()?;
        let slot = self.overflow_slots.clone().try_acquire_owned().ok()?;
        Some(Reservation::DeadLetter {
            dispatcher: self.clone(),
            slot,
        })
    }

    /// A place in the queue if one is free now (and the queue's bytes are
    /// below their limit).
    pub fn try_reserve_place(self: &Arc<Self>) -> Option<Reservation> {
        if !self.bytes.has_room() {
            return None;
        }
        let place = self.places.clone().try_acquire_owned().ok()?;
        let claim = self.budget.try_claim(&self.bytes, &self.deps.in_flight)?;
        Some(Reservation::Queue {
            dispatcher: self.clone(),
            place,
            claim,
        })
    }

    /// A place in the queue, waiting for one (and for the queue's bytes to
    /// fall below their limit) as long as it takes: a durable consumer reads
    /// no further than its subscriber takes. None only when
    /// the namespace's budget is full (durable delivery gives it none).
    pub async fn reserve(self: &Arc<Self>) -> Option<Reservation> {
        let place = self.places.clone().acquire_owned().await.ok()?;
        self.bytes.room().await;
        let claim = self.budget.try_claim(&self.bytes, &self.deps.in_flight)?;
        Some(Reservation::Queue {
            dispatcher: self.clone(),
            place,
            claim,
        })
    }

    /// Whether `places` more events would keep the queue within its bytes,
    /// each counted as large as the largest it has taken: for a consumer that
    /// reserves several places before it sees their events.
    pub fn has_room_for(&self, places: usize) -> bool {
        self.bytes.has_room_for(places)
    }

    fn enqueue(&self, queued: Queued) {
        let wake = lock(&self.pool).push(queued);
        match wake {
            Wake::Parked(worker) => worker.wake.notify_one(),
            Wake::Spawn => {
                self.deps.runtime.spawn(work(
                    self.pool.clone(),
                    self.target.clone(),
                    self.deps.clone(),
                    self.counts.clone(),
                ));
            }
            Wake::Busy => {}
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let parked = lock(&self.pool).close();
        for worker in parked {
            worker.wake.notify_one();
        }
    }
}

async fn work(
    pool: Arc<Mutex<Pool>>,
    target: Arc<ArcSwap<Target>>,
    deps: Arc<DispatchDeps>,
    counts: Arc<Counts>,
) {
    let me = Arc::new(Worker {
        wake: Notify::new(),
        parked: AtomicBool::new(false),
    });
    let mut sessions = Sessions::new(&deps);
    // When the quiet spell that began as this worker last found nothing to do ends.
    let mut quiet_until = None;
    let mut quiet = false;
    loop {
        // Bound first, so the lock is not held across the delivery.
        let next = lock(&pool).next(&me, quiet);
        match next {
            Next::Event(queued) => {
                let target = target.load_full();
                let settled = queued.settled.as_ref();
                let ended = deliver(&deps, &target, &queued.event, settled, &mut sessions).await;
                counts.count(ended);
                if let Some(settled) = settled.filter(|_| ended != Ended::HandedBack) {
                    settled.by.settle(settled.seq);
                }
                quiet_until = None;
                quiet = false;
            }
            Next::Wait => {
                let until =
                    *quiet_until.get_or_insert_with(|| tokio::time::Instant::now() + WORKER_IDLE);
                tokio::select! {
                    woken = tokio::time::timeout_at(until, me.wake.notified()) => {
                        quiet = woken.is_err();
                    }
                    // Still on the idle stack: `next` has it wait on. A
                    // wake-up given meanwhile is kept for the next wait.
                    () = sessions.closed_while_idle() => {}
                }
            }
            Next::Stop => return,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
