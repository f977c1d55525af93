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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

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
    pool: Arc<Mutex<Pool>>,
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
                    dead_letter_overflow(&deps, &target, &event, &mut Sessions::default()).await;
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
            pool: Arc::new(Mutex::new(Pool::new(settings.concurrency.max(1)))),
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
        let wake = lock(&self.pool).push(queued);
        match wake {
            Wake::Parked(worker) => worker.wake.notify_one(),
            Wake::Spawn => {
                tokio::spawn(work(
                    self.pool.clone(),
                    self.target.clone(),
                    self.deps.clone(),
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

async fn work(pool: Arc<Mutex<Pool>>, target: Arc<ArcSwap<Target>>, deps: Arc<DispatchDeps>) {
    let me = Arc::new(Worker {
        wake: Notify::new(),
        parked: AtomicBool::new(false),
    });
    let mut sessions = Sessions::default();
    // When the quiet spell that began as this worker last found nothing to do ends.
    let mut quiet_until = None;
    let mut quiet = false;
    loop {
        // Bound first, so the lock is not held across the delivery.
        let next = lock(&pool).next(&me, quiet);
        match next {
            Next::Event(queued) => {
                let target = target.load_full();
                deliver(&deps, &target, &queued.event, &mut sessions).await;
                quiet_until = None;
                quiet = false;
            }
            Next::Wait => {
                let until =
                    *quiet_until.get_or_insert_with(|| tokio::time::Instant::now() + WORKER_IDLE);
                quiet = tokio::time::timeout_at(until, me.wake.notified())
                    .await
                    .is_err();
            }
            Next::Stop => return,
        }
    }
}

/// The worker pool, on paused time.
///
/// No test here touches a socket: the subscriber's address is one the transport
/// refuses before any I/O (`http://no such host/` is not a URI), so a delivery is
/// a failed attempt that costs no real time, and with one retry it lasts exactly
/// its backoff in virtual time. An event is done when its claim is given back,
/// which `InFlight` counts. What is under test is the pool, not HTTP, so no
/// transport seam is needed (a real loopback subscriber would do real I/O, and
/// paused time jumps ahead while I/O is pending).
///
/// How the race is pinned: the old pool decided to stop, and gave back its place
/// in `running`, in two steps with no `.await` between them. No single-threaded
/// runtime can run an enqueue in that gap; real threads did, about once in
/// 100,000 tries. The pool's steps are now single critical sections
/// (`Pool::push`, `Pool::next`), so whatever threads do is some order of those
/// steps: `every_order_of_pool_steps_leaves_no_event_stranded` tries every order,
/// and the tokio tests run the same steps through real tasks and timers, down to
/// an event sent on the very tick a worker's quiet spell ends.
#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tokio::time::Instant;

    use super::*;

    struct NoReplies;

    impl ReplySink for NoReplies {
        fn reply(&self, _: &str, _: &str, _: cloudevents::Event) {}
    }

    fn deps() -> Arc<DispatchDeps> {
        Arc::new(DispatchDeps {
            replies: Arc::new(NoReplies),
            in_flight: InFlight::default(),
            metrics: Metrics::new(),
        })
    }

    /// A dispatcher whose every delivery lasts `busy` (virtual time).
    fn dispatcher(deps: &Arc<DispatchDeps>, concurrency: usize, busy: Duration) -> Arc<Dispatcher> {
        let target = Target {
            label: "test/trigger".into(),
            subscriber: "http://no such host/".into(),
            policy: DeliveryPolicy {
                retry: u32::from(!busy.is_zero()),
                backoff_policy: crate::resources::BackoffPolicy::Linear,
                backoff_delay: busy,
                ..DeliveryPolicy::default()
            },
            structured: false,
            reply_to: None,
        };
        let settings = DispatcherSettings {
            queue_capacity: 64,
            concurrency,
        };
        Dispatcher::spawn(target, settings, Budget::new(64), deps.clone())
    }

    fn event() -> Arc<PreparedEvent> {
        use cloudevents::{EventBuilder, EventBuilderV10};
        let event = EventBuilderV10::new()
            .id("1")
            .ty("test.event")
            .source("test")
            .build()
            .expect("a valid event");
        Arc::new(PreparedEvent::new(event))
    }

    fn send(dispatcher: &Arc<Dispatcher>) {
        dispatcher
            .try_reserve()
            .expect("room in the queue")
            .send(event());
    }

    fn running(dispatcher: &Dispatcher) -> usize {
        lock(&dispatcher.pool).running
    }

    fn parked(dispatcher: &Dispatcher) -> Vec<Arc<Worker>> {
        lock(&dispatcher.pool).idle.clone()
    }

    /// Long enough for any test's deliveries; an event still in flight after it
    /// is stranded.
    const BOUND: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn an_event_sent_as_the_quiet_spell_ends_is_delivered_at_once() {
        let tick = Duration::from_millis(1);
        for concurrency in [1, 2] {
            for (before, after) in [
                (tick, Duration::ZERO),
                (Duration::ZERO, Duration::ZERO),
                (Duration::ZERO, tick),
            ] {
                for yields in 0..4 {
                    let deps = deps();
                    let dispatcher = dispatcher(&deps, concurrency, Duration::ZERO);
                    send(&dispatcher);
                    assert_eq!(deps.in_flight.drained(BOUND).await, 0);
                    // The worker has just found nothing to do: its quiet spell starts now.
                    let quiet_ends = Instant::now() + WORKER_IDLE;
                    tokio::time::sleep_until(quiet_ends - before + after).await;
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                    let sent = Instant::now();
                    send(&dispatcher);
                    assert_eq!(
                        deps.in_flight.drained(BOUND).await,
                        0,
                        "stranded: concurrency {concurrency}, sent {:?} after the quiet spell ended, {yields} yields",
                        sent.checked_duration_since(quiet_ends)
                    );
                    assert_eq!(sent.elapsed(), Duration::ZERO, "delivered at once");
                    assert_eq!(running(&dispatcher), 1);
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_worker_stops_and_the_next_event_starts_another() {
        let deps = deps();
        let dispatcher = dispatcher(&deps, 4, Duration::ZERO);
        send(&dispatcher);
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
        assert_eq!((running(&dispatcher), parked(&dispatcher).len()), (1, 1));

        let quiet_ends = Instant::now() + WORKER_IDLE;
        tokio::time::sleep_until(quiet_ends - Duration::from_millis(1)).await;
        assert_eq!(running(&dispatcher), 1, "still within its quiet spell");
        tokio::time::sleep_until(quiet_ends + Duration::from_millis(1)).await;
        assert_eq!((running(&dispatcher), parked(&dispatcher).len()), (0, 0));

        send(&dispatcher);
        assert_eq!(running(&dispatcher), 1);
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_most_recently_idle_worker_takes_the_next_event() {
        let busy = Duration::from_millis(100);
        let deps = deps();
        let dispatcher = dispatcher(&deps, 2, busy);
        send(&dispatcher); // worker A, busy until 100 ms
        tokio::time::sleep(busy / 2).await;
        send(&dispatcher); // A is busy: worker B, until 150 ms
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
        let idle = parked(&dispatcher);
        assert_eq!(idle.len(), 2, "A parked at 100 ms, then B at 150 ms");

        send(&dispatcher);
        let left = parked(&dispatcher);
        assert_eq!(left.len(), 1);
        assert!(
            Arc::ptr_eq(&left[0], &idle[0]),
            "B, parked last, was woken; A waits on"
        );

        // A's quiet spell ran from 100 ms; B has been busy since: A stops first.
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
        tokio::time::sleep(WORKER_IDLE - busy).await;
        assert_eq!(running(&dispatcher), 1);
        assert!(
            Arc::ptr_eq(&parked(&dispatcher)[0], &idle[1]),
            "B is the one left"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_beyond_the_concurrency_wait_for_a_busy_worker() {
        let busy = Duration::from_millis(100);
        let deps = deps();
        let dispatcher = dispatcher(&deps, 2, busy);
        let start = Instant::now();
        for _ in 0..6 {
            send(&dispatcher);
            assert!(running(&dispatcher) <= 2);
        }
        assert_eq!(running(&dispatcher), 2);
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
        assert_eq!(start.elapsed(), 3 * busy, "two at a time, back to back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_dispatcher_finishes_its_queue_and_the_drain_completes() {
        let busy = Duration::from_millis(100);
        let deps = deps();
        let dispatcher = dispatcher(&deps, 1, busy);
        let pool = dispatcher.pool.clone();
        let start = Instant::now();
        for _ in 0..3 {
            send(&dispatcher);
        }
        drop(dispatcher);
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
        assert_eq!(
            start.elapsed(),
            3 * busy,
            "the queue was delivered, not dropped"
        );
        tokio::task::yield_now().await;
        assert_eq!(
            lock(&pool).running,
            0,
            "the worker stopped without a quiet spell"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_dispatcher_stops_its_parked_workers_at_once() {
        let deps = deps();
        let dispatcher = dispatcher(&deps, 2, Duration::ZERO);
        send(&dispatcher);
        assert_eq!(deps.in_flight.drained(BOUND).await, 0);
        let pool = dispatcher.pool.clone();
        assert_eq!(lock(&pool).running, 1);
        drop(dispatcher);
        tokio::task::yield_now().await;
        assert_eq!(lock(&pool).running, 0);
    }

    /// The pool's steps driven by hand, in every order threads could run them.
    mod interleavings {
        use super::*;

        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        enum Doing {
            /// About to ask the pool what to do (just spawned, or done delivering).
            Asking,
            Delivering,
            Waiting,
            Stopped,
        }

        struct Simulated {
            worker: Arc<Worker>,
            doing: Doing,
            /// A `notify_one` it has not consumed yet.
            woken: bool,
        }

        #[derive(Clone, Copy, Debug)]
        enum Step {
            Send,
            /// The dispatcher is dropped.
            Close,
            Ask(usize),
            Deliver(usize),
            /// Its wait ends with the wake-up it was given.
            Wake(usize),
            /// Its wait ends with its quiet spell (a wake-up may still be pending).
            TimeOut(usize),
        }

        struct World {
            pool: Pool,
            workers: Vec<Simulated>,
            unsent: usize,
            sent: usize,
            taken: usize,
            closed: bool,
            // What a queued event holds, from the same sources as the real thing.
            places: Arc<Semaphore>,
            budget: Arc<Budget>,
            in_flight: InFlight,
        }

        impl World {
            fn new(concurrency: usize, events: usize) -> Self {
                Self {
                    pool: Pool::new(concurrency),
                    workers: Vec::new(),
                    unsent: events,
                    sent: 0,
                    taken: 0,
                    closed: false,
                    places: Arc::new(Semaphore::new(events)),
                    budget: Budget::new(events),
                    in_flight: InFlight::default(),
                }
            }

            fn steps(&self) -> Vec<Step> {
                let mut steps = Vec::new();
                if !self.closed {
                    if self.unsent > 0 {
                        steps.push(Step::Send);
                    }
                    steps.push(Step::Close);
                }
                for (i, simulated) in self.workers.iter().enumerate() {
                    match simulated.doing {
                        Doing::Asking => steps.push(Step::Ask(i)),
                        Doing::Delivering => steps.push(Step::Deliver(i)),
                        Doing::Waiting => {
                            if simulated.woken {
                                steps.push(Step::Wake(i));
                            }
                            steps.push(Step::TimeOut(i));
                        }
                        Doing::Stopped => {}
                    }
                }
                steps
            }

            fn take(&mut self, step: Step) {
                match step {
                    Step::Send => {
                        self.unsent -= 1;
                        self.sent += 1;
                        let queued = Queued {
                            event: event(),
                            _place: self.places.clone().try_acquire_owned().expect("a place"),
                            _claim: self.budget.try_claim(&self.in_flight).expect("budget"),
                        };
                        match self.pool.push(queued) {
                            Wake::Parked(worker) => self.wake(&worker),
                            Wake::Spawn => self.workers.push(Simulated {
                                worker: Arc::new(Worker {
                                    wake: Notify::new(),
                                    parked: AtomicBool::new(false),
                                }),
                                doing: Doing::Asking,
                                woken: false,
                            }),
                            Wake::Busy => {}
                        }
                    }
                    Step::Close => {
                        self.closed = true;
                        for worker in self.pool.close() {
                            self.wake(&worker);
                        }
                    }
                    Step::Ask(i) | Step::Deliver(i) => self.ask(i, false),
                    Step::Wake(i) => {
                        self.workers[i].woken = false;
                        self.ask(i, false);
                    }
                    Step::TimeOut(i) => self.ask(i, true),
                }
            }

            fn wake(&mut self, worker: &Arc<Worker>) {
                let simulated = self
                    .workers
                    .iter_mut()
                    .find(|s| Arc::ptr_eq(&s.worker, worker))
                    .expect("a known worker");
                simulated.woken = true;
            }

            fn ask(&mut self, i: usize, quiet: bool) {
                let simulated = &mut self.workers[i];
                simulated.doing = match self.pool.next(&simulated.worker, quiet) {
                    Next::Event(_) => {
                        self.taken += 1;
                        Doing::Delivering
                    }
                    Next::Wait => Doing::Waiting,
                    Next::Stop => Doing::Stopped,
                };
            }

            /// Will look at the queue without anyone's help.
            fn awake(simulated: &Simulated) -> bool {
                match simulated.doing {
                    Doing::Asking | Doing::Delivering => true,
                    Doing::Waiting => {
                        simulated.woken && !simulated.worker.parked.load(Ordering::Relaxed)
                    }
                    Doing::Stopped => false,
                }
            }

            fn check(&self, path: &[Step]) {
                let live = self.workers.iter().filter(|s| s.doing != Doing::Stopped);
                assert_eq!(self.pool.running, live.count(), "running after {path:?}");
                assert!(self.pool.running <= self.pool.concurrency, "after {path:?}");
                if !self.pool.queue.is_empty() {
                    assert!(
                        self.workers.iter().any(Self::awake),
                        "an event is queued and no worker will look: {path:?}"
                    );
                }
            }

            fn check_finished(&self, path: &[Step]) {
                assert_eq!(
                    self.taken, self.sent,
                    "every event sent was taken: {path:?}"
                );
                assert!(self.pool.queue.is_empty(), "{path:?}");
                assert!(self.pool.idle.is_empty(), "{path:?}");
            }

            fn key(&self) -> impl Eq + std::hash::Hash + use<> {
                let workers: Vec<_> = self
                    .workers
                    .iter()
                    .map(|s| (s.doing, s.woken, s.worker.parked.load(Ordering::Relaxed)))
                    .collect();
                let idle: Vec<_> = self
                    .pool
                    .idle
                    .iter()
                    .filter_map(|w| self.workers.iter().position(|s| Arc::ptr_eq(&s.worker, w)))
                    .collect();
                (
                    workers,
                    idle,
                    self.unsent,
                    self.pool.queue.len(),
                    self.closed,
                )
            }
        }

        /// Depth-first over every order of steps, each state checked once.
        fn explore(concurrency: usize, events: usize) -> usize {
            let mut seen = HashSet::new();
            let mut paths = vec![Vec::new()];
            while let Some(path) = paths.pop() {
                let mut world = World::new(concurrency, events);
                for step in &path {
                    world.take(*step);
                }
                world.check(&path);
                if !seen.insert(world.key()) {
                    continue;
                }
                let steps = world.steps();
                if steps.is_empty() {
                    world.check_finished(&path);
                }
                for step in steps {
                    let mut longer = path.clone();
                    longer.push(step);
                    paths.push(longer);
                }
            }
            seen.len()
        }

        #[test]
        fn every_order_of_pool_steps_leaves_no_event_stranded() {
            for (concurrency, events) in [(1, 3), (2, 3), (3, 2)] {
                let states = explore(concurrency, events);
                assert!(states > 10, "explored {states} states");
            }
        }
    }
}
