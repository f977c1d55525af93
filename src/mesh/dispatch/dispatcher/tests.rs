//! The worker pool, on paused time.
//!
//! Deliveries go nowhere and last a set virtual time (see `testing`); an event
//! is done when its claim is given back, which `InFlight` counts. What is under
//! test is the pool, not HTTP, so no transport seam is needed (a real loopback
//! subscriber would do real I/O, and paused time jumps ahead while I/O is
//! pending).
//!
//! How the race is pinned: the old pool decided to stop, and gave back its place
//! in `running`, in two steps with no `.await` between them. No single-threaded
//! runtime can run an enqueue in that gap; real threads did, about once in
//! 100,000 tries. The pool's steps are now single critical sections
//! (`Pool::push`, `Pool::next`), so whatever threads do is some order of those
//! steps: `every_order_of_pool_steps_leaves_no_event_stranded` tries every order,
//! and the tokio tests run the same steps through real tasks and timers, down to
//! an event sent on the very tick a worker's quiet spell ends.

use std::collections::HashSet;

use tokio::time::Instant;

use super::testing::{deps, event};
use super::*;

fn dispatcher(deps: &Arc<DispatchDeps>, concurrency: usize, busy: Duration) -> Arc<Dispatcher> {
    Dispatcher::test("test/trigger")
        .queue(64)
        .concurrency(concurrency)
        .busy(busy)
        .spawn(deps)
}

fn send(dispatcher: &Arc<Dispatcher>) {
    dispatcher
        .try_reserve()
        .expect("room in the queue")
        .send(event("test.event"));
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

/// An event of `bytes` bytes of data (which it counts twice: parsed, and
/// as a delivery will render it).
fn sized_event(bytes: usize) -> Arc<PreparedEvent> {
    use cloudevents::{EventBuilder, EventBuilderV10};
    let event = EventBuilderV10::new()
        .id("1")
        .ty("test.event")
        .source("test")
        .data("application/octet-stream", vec![0u8; bytes])
        .build()
        .expect("a valid event");
    Arc::new(PreparedEvent::new(event))
}

#[tokio::test(start_paused = true)]
async fn a_queue_at_its_byte_limit_takes_nothing_until_a_delivery_ends() {
    let busy = Duration::from_secs(1);
    let deps = deps();
    let dispatcher = Dispatcher::test("test/trigger")
        .queue(64)
        .queue_bytes(20_000)
        .busy(busy)
        .spawn(&deps);
    let big = sized_event(6_000);
    for _ in 0..2 {
        dispatcher
            .try_reserve_place()
            .expect("below 20,000 bytes")
            .send(big.clone());
    }
    assert!(
        dispatcher.try_reserve_place().is_none(),
        "12,000 bytes held"
    );
    assert!(
        dispatcher.try_reserve().is_none(),
        "no dead-letter sink either"
    );
    assert!(!dispatcher.has_room_for(1));
    let start = Instant::now();
    let reservation = dispatcher.reserve().await.expect("no budget limit");
    assert_eq!(
        start.elapsed(),
        busy,
        "waited for the first delivery to end"
    );
    reservation.send(big);
    assert_eq!(deps.in_flight.drained(BOUND).await, 0);
    assert_eq!(
        start.elapsed(),
        3 * busy,
        "one worker: the three back to back"
    );
    assert!(dispatcher.has_room_for(1));
    assert!(
        !dispatcher.has_room_for(2),
        "two more as large would pass 10,000"
    );
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
    use crate::mesh::dispatch::InFlight;

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
        bytes: Arc<QueueBytes>,
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
                budget: Budget::of_events(events),
                bytes: QueueBytes::new(usize::MAX),
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
                        settled: None,
                        event: event("test.event"),
                        _place: self.places.clone().try_acquire_owned().expect("a place"),
                        _claim: self
                            .budget
                            .try_claim(&self.bytes, &self.in_flight)
                            .expect("budget"),
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
