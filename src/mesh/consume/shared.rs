//! One reader per Broker log for all of its Triggers. Reading the log once
//! per Trigger cost every Trigger every event: 10,000 Triggers read 10,000
//! copies. The shared reader reads each event once and hands it, through the
//! type index, only to the Triggers whose filters let it through.
//!
//! A Trigger is either attached (the shared reader delivers for it) or on its
//! own (its task reads the log from its cursor with its filter, as when it
//! starts, replays, or fell behind). A Trigger on its own that reaches the
//! shared reader's position attaches, under the group's lock, between two of
//! the shared reader's batches, so no event is handed out twice or skipped.
//! An attached Trigger whose queue is full is detached at that event: it
//! goes on on its own from there, and no one waits for it.
//!
//! Cursors: an attached Trigger's cursor takes each event handed to it (and
//! settles it when delivered); every `PASS_EVERY` the shared reader moves the
//! attached cursors past what it read, so a restart reads at most that much
//! again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};

use super::cursor::Reader;
use super::feed::{READ_BATCH, hand_to, hand_waiting, send};
use crate::locks::lock;
use crate::mesh::dispatch::Dispatcher;
use crate::mesh::filter::{Filter, TriggerIndex, passes};
use crate::mesh::log::{Cursor, EventLog, Log, Owner, Record, Start};
use crate::mesh::routing::OpeningGuard;
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

const PASS_EVERY: Duration = Duration::from_millis(100);

/// How long a reader matches before it lets the dataplane's other tasks
/// run: a Broker whose Triggers' filters are costly (up to
/// `BROKER_WORK` an event) must not hold a worker from other namespaces'
/// deliveries for a whole batch.
const TURN: Duration = Duration::from_millis(2);

/// A Broker log's Triggers and where its shared reader is.
pub struct Group {
    log: Arc<Log>,
    state: Mutex<GroupState>,
    /// The shared reader's position, for Triggers on their own to follow.
    next: watch::Sender<u64>,
    /// How long the shared reader matches before it yields (`TURN`).
    turn: Duration,
}

struct GroupState {
    /// The next event the shared reader hands out.
    next: u64,
    index: TriggerIndex<Arc<Member>>,
}

/// A Trigger as its Broker's group knows it.
pub struct Member {
    dispatcher: Arc<Dispatcher>,
    /// Set once its task has opened its cursor.
    cursor: std::sync::OnceLock<Arc<Cursor>>,
    /// Changed only under the group's lock.
    attached: AtomicBool,
    /// In the shared reader's index (it may attach only then); set under
    /// the group's lock.
    indexed: AtomicBool,
    /// Told when it enters the index.
    now_indexed: Notify,
    /// Told when the shared reader detaches it.
    detached: Notify,
}

impl Member {
    pub fn new(dispatcher: Arc<Dispatcher>) -> Arc<Self> {
        Arc::new(Self {
            dispatcher,
            cursor: std::sync::OnceLock::new(),
            attached: AtomicBool::new(false),
            indexed: AtomicBool::new(false),
            now_indexed: Notify::new(),
            detached: Notify::new(),
        })
    }
}

impl Group {
    pub fn new(log: Arc<Log>) -> Arc<Self> {
        let next = log.end();
        Arc::new(Self {
            log,
            state: Mutex::new(GroupState {
                next,
                index: TriggerIndex::new(Vec::new()),
            }),
            next: watch::Sender::new(next),
            turn: TURN,
        })
    }

    /// The Broker's Triggers changed: the shared reader matches against these.
    pub fn set_index(&self, index: TriggerIndex<Arc<Member>>) {
        let mut state = lock(&self.state);
        for member in index.values() {
            if !member.indexed.swap(true, Ordering::AcqRel) {
                member.now_indexed.notify_one();
            }
        }
        state.index = index;
    }
}

/// The shared reader of a Broker log, until the task is stopped.
pub async fn read_shared(group: Arc<Group>, metrics: Arc<Metrics>, shutdown: Shutdown) {
    let mut end = group.log.watch_end();
    let mut last_pass = Instant::now();
    // Where the attached cursors were last moved to.
    let mut passed = lock(&group.state).next;
    loop {
        let next = lock(&group.state).next;
        // With cursors behind, wait no longer than until they are due to move.
        let pass_due = tokio::time::Instant::from_std(last_pass + PASS_EVERY);
        tokio::select! {
            changed = end.wait_for(|end| *end > next) => if changed.is_err() { return },
            () = tokio::time::sleep_until(pass_due), if passed < next => {
                pass(&group, next);
                passed = next;
                last_pass = Instant::now();
                continue;
            }
            () = shutdown.clone().wait() => return,
        }
        let batch = match group.log.read(next, READ_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(log = %group.log.name(), %error, "cannot read the log; trying again");
                tokio::time::sleep(super::cursor::RETRY).await;
                continue;
            }
        };
        // Nothing under `next` left (trimmed: no Trigger needed it): go on
        // from what the log holds.
        let mut upto = batch
            .first()
            .map_or(group.log.end(), |first| first.seq.max(next));
        let mut rest = &batch[..];
        loop {
            let through;
            (through, upto) = hand_out_turn(&group, rest, upto, &metrics);
            rest = &rest[through..];
            group.next.send_replace(upto);
            if rest.is_empty() {
                break;
            }
            // The turn is over: the others' turn, then the rest of the batch.
            tokio::task::yield_now().await;
        }
        if last_pass.elapsed() >= PASS_EVERY {
            pass(&group, upto);
            passed = upto;
            last_pass = Instant::now();
        }
    }
}

/// Hands `records` from `from` on to the attached Triggers whose filters
/// let them through, for one turn (`TURN`) at most: how many records it went
/// through, and where the shared reader is then.
fn hand_out_turn(group: &Group, records: &[Record], from: u64, metrics: &Metrics) -> (usize, u64) {
    let started = Instant::now();
    let mut state = lock(&group.state);
    let mut upto = from;
    let mut through = records.len();
    for (i, record) in records.iter().enumerate() {
        if record.seq < from {
            continue;
        }
        // A Trigger on its own reads the event itself: its filter is not
        // evaluated (nor the Broker's budget spent) for it here.
        let attached = |member: &Arc<Member>| member.attached.load(Ordering::Acquire);
        for member in state
            .index
            .matching_among(&record.event.event, metrics, attached)
        {
            hand_out(member, record);
        }
        upto = record.seq + 1;
        if started.elapsed() >= group.turn {
            through = i + 1;
            break;
        }
    }
    state.next = upto;
    (through, upto)
}

/// Moves the attached Triggers' cursors past `upto`, which the shared reader
/// has handed out.
fn pass(group: &Group, upto: u64) {
    let state = lock(&group.state);
    for member in state.index.values() {
        if member.attached.load(Ordering::Acquire)
            && let Some(cursor) = member.cursor.get()
        {
            cursor.passed(upto);
        }
    }
}

/// An event to an attached Trigger, or the Trigger detached at it when its
/// queue is full. Called under the group's lock.
fn hand_out(member: &Member, record: &Record) {
    if !member.attached.load(Ordering::Acquire) {
        return;
    }
    let Some(cursor) = member.cursor.get() else {
        return;
    };
    match member.dispatcher.try_reserve_place() {
        Some(reservation) => send(reservation, cursor, record),
        None => {
            member.attached.store(false, Ordering::Release);
            cursor.passed(record.seq);
            member.detached.notify_one();
        }
    }
}

/// What a Trigger's task needs.
pub struct Solo {
    pub event_log: Arc<EventLog>,
    pub consumer: String,
    pub owner: Owner,
    pub start: Start,
    pub label: String,
    pub filter: Arc<ArcSwap<Filter>>,
    pub member: Arc<Member>,
    pub group: Arc<Group>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
}

/// A Trigger's task: on its own until it reaches the shared reader, then
/// attached until detached, and so on, until stopped.
pub async fn trigger(solo: Solo, mut opening: OpeningGuard) {
    let Solo {
        member,
        group,
        shutdown,
        ..
    } = &solo;
    let opened = Reader::open(
        &solo.event_log,
        solo.consumer.clone(),
        solo.owner.clone(),
        group.log.clone(),
        solo.start,
        READ_BATCH,
        shutdown.clone(),
    );
    let Some(reader) = opened.await else {
        return;
    };
    opening.done();
    let cursor = reader.cursor.clone();
    let _ = member.cursor.set(cursor.clone());
    let wants = |record: &Record| {
        passes(
            &solo.filter.load(),
            &solo.label,
            &record.event.event,
            &solo.metrics,
        )
    };
    if !hand_waiting(&reader, &member.dispatcher, wants, shutdown).await {
        return;
    }
    let mut following = group.next.subscribe();
    loop {
        let mut from = cursor.read_to();
        // On its own up to the shared reader, then attached.
        loop {
            let shared = *following.borrow_and_update();
            if from < shared {
                let Some(next) = catch_up(&solo, &cursor, from, shared).await else {
                    return;
                };
                from = next;
                continue;
            }
            {
                let state = lock(&group.state);
                if from == state.next && member.indexed.load(Ordering::Acquire) {
                    member.attached.store(true, Ordering::Release);
                    break;
                }
            }
            // Ahead of the shared reader (a new Trigger starts at the log's
            // end), or not in its index yet: wait until that changes.
            tokio::select! {
                changed = following.changed() => if changed.is_err() { return },
                () = member.now_indexed.notified() => {}
                () = shutdown.clone().wait() => return,
            }
        }
        tokio::select! {
            () = member.detached.notified() => {}
            () = shutdown.clone().wait() => return,
        }
    }
}

/// Reads `[from, to)` with the Trigger's filter into its dispatcher (waiting
/// for queue places); answers where it got to, None when shutting down.
async fn catch_up(solo: &Solo, cursor: &Arc<Cursor>, from: u64, to: u64) -> Option<u64> {
    let Solo {
        label,
        filter,
        member,
        group,
        metrics,
        shutdown,
        ..
    } = solo;
    let log = &group.log;
    let batch = match log.read(from, READ_BATCH).await {
        Ok(batch) => batch,
        Err(error) => {
            tracing::error!(%label, %error, "cannot read the log; trying again");
            tokio::time::sleep(super::cursor::RETRY).await;
            return Some(from);
        }
    };
    let Some(first) = batch.first() else {
        // What was under the cursor is gone: go on from the shared reader.
        cursor.passed(to);
        return Some(to);
    };
    let mut next = first.seq.max(from);
    let mut turn = Instant::now();
    for record in batch.iter().filter(|r| r.seq >= from && r.seq < to) {
        if turn.elapsed() >= TURN {
            tokio::task::yield_now().await;
            turn = Instant::now();
        }
        if passes(&filter.load(), label, &record.event.event, metrics)
            && !hand_to(&member.dispatcher, cursor, record, shutdown).await
        {
            return None;
        }
        next = record.seq + 1;
        cursor.passed(next);
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Fsync;
    use crate::mesh::dispatch::testing::{deps, event, outcomes};
    use crate::mesh::filter::Entry;
    use crate::mesh::log::{LogKind, LogSettings};
    use crate::mesh::routing::Opening;

    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// An event log in `dir` and its Broker log team-a/default.
    fn broker_log(dir: &tempfile::TempDir) -> (Arc<EventLog>, Arc<Log>) {
        let settings = LogSettings {
            fsync: Fsync::Interval,
            namespace_bytes: 1 << 30,
            channel_bytes: 1 << 30,
            retention: Duration::ZERO,
        };
        let event_log = EventLog::open(dir.path(), settings, Metrics::new()).expect("opens");
        let log = event_log
            .log(LogKind::Broker, "team-a", "default")
            .expect("log");
        (event_log, log)
    }

    /// A Trigger named `name` on `group`'s log, delivering everything to `dispatcher`.
    fn solo(
        event_log: &Arc<EventLog>,
        group: &Arc<Group>,
        name: &str,
        dispatcher: Arc<Dispatcher>,
        shutdown: &Shutdown,
    ) -> Solo {
        Solo {
            event_log: event_log.clone(),
            consumer: format!("trigger/{name}"),
            owner: Owner {
                kind: "trigger",
                namespace: "team-a".into(),
                name: name.into(),
            },
            start: Start::End,
            label: format!("team-a/{name}"),
            filter: Arc::new(ArcSwap::new(Arc::new(Filter::Everything))),
            member: Member::new(dispatcher),
            group: group.clone(),
            metrics: Metrics::new(),
            shutdown: shutdown.clone(),
        }
    }

    /// A new Trigger's cursor starts at the log's end when its task opens it:
    /// until then the Trigger holds readiness back, and once it is open an
    /// event appended at once reaches it.
    #[tokio::test]
    async fn a_new_trigger_holds_readiness_back_until_its_cursor_is_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (event_log, log) = broker_log(&dir);
        let (_stop, shutdown) = Shutdown::new();
        let group = Group::new(log.clone());
        tokio::spawn(read_shared(group.clone(), Metrics::new(), shutdown.clone()));
        let deps = deps();
        let dispatcher = Dispatcher::test("team-a/new").queue(8).spawn(&deps);
        let solo = solo(&event_log, &group, "new", dispatcher, &shutdown);
        let member = solo.member.clone();
        group.set_index(TriggerIndex::new(vec![Entry {
            trigger: "team-a/new".into(),
            filter: Arc::new(Filter::Everything),
            value: member.clone(),
        }]));
        let opening = Opening::default();
        tokio::spawn(trigger(solo, opening.start()));
        assert!(!opening.is_idle(), "not open before its task ran");
        eventually("the cursor open", || opening.is_idle()).await;
        assert!(
            member.cursor.get().is_some(),
            "idle only once the cursor is open"
        );
        log.append(&[event("t")]).await.expect("appends");
        eventually("the Trigger got the event", || {
            outcomes(&deps.metrics, "undeliverable") == 1
        })
        .await;
    }

    /// A reader whose turns end after every event (as they do when each
    /// event's filters cost more than `TURN`, which no filter can be made to
    /// cost on every machine) lets the runtime's other tasks run between
    /// them. One worker thread, so what runs when is fixed: a task that
    /// yields in a loop sees the reader at every event of its batch, and the
    /// Triggers still get every event.
    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_lets_other_tasks_run_between_its_turns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (event_log, log) = broker_log(&dir);
        let (_stop, shutdown) = Shutdown::new();
        let mut group = Group::new(log.clone());
        Arc::get_mut(&mut group).expect("not shared yet").turn = Duration::ZERO;
        let deps = deps();
        let mut entries = Vec::new();
        let mut members = Vec::new();
        for i in 0..4 {
            let name = format!("t-{i}");
            let dispatcher = Dispatcher::test(&format!("team-a/{name}"))
                .queue(64)
                .spawn(&deps);
            let solo = solo(&event_log, &group, &name, dispatcher, &shutdown);
            members.push(solo.member.clone());
            entries.push(Entry {
                trigger: format!("team-a/{name}"),
                filter: Arc::new(Filter::Everything),
                value: solo.member.clone(),
            });
            tokio::spawn(trigger(solo, Opening::default().start()));
        }
        group.set_index(TriggerIndex::new(entries));
        let attached = |member: &Arc<Member>| member.attached.load(Ordering::Acquire);
        eventually("every Trigger attached", || members.iter().all(attached)).await;

        let events: Vec<_> = (0..5).map(|_| event("t")).collect();
        let from = log.end();
        log.append(&events).await.expect("appends");
        let to = from + 5;

        // Started after the append, so the reader's batch holds all five.
        let mut position = group.next.subscribe();
        tokio::spawn(read_shared(group.clone(), Metrics::new(), shutdown.clone()));
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.last() != Some(&to) {
            assert!(Instant::now() < deadline, "the reader stalled at {seen:?}");
            let now = *position.borrow_and_update();
            if now > from && seen.last() != Some(&now) {
                seen.push(now);
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            seen,
            (from + 1..=to).collect::<Vec<_>>(),
            "another task ran after every event"
        );
        eventually("every Trigger got all five", || {
            outcomes(&deps.metrics, "undeliverable") == 4 * 5
        })
        .await;
    }

    /// Two Triggers on one Broker log: one fast, one whose subscriber takes
    /// 20 ms an event with a queue of one. The slow one is detached at the
    /// first event it has no room for and catches up on its own; the fast
    /// one gets everything meanwhile; each gets every event once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_trigger_detaches_catches_up_and_attaches_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (event_log, log) = broker_log(&dir);
        let (_stop, shutdown) = Shutdown::new();
        let metrics = Metrics::new();
        let group = Group::new(log.clone());
        tokio::spawn(read_shared(
            group.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        let (fast_deps, slow_deps) = (deps(), deps());
        let fast = Dispatcher::test("team-a/fast").queue(64).spawn(&fast_deps);
        let slow = Dispatcher::test("team-a/slow")
            .queue(1)
            .busy(Duration::from_millis(20))
            .spawn(&slow_deps);
        let mut entries = Vec::new();
        let mut members = Vec::new();
        for (name, dispatcher) in [("fast", fast), ("slow", slow)] {
            let solo = solo(&event_log, &group, name, dispatcher, &shutdown);
            let member = solo.member.clone();
            tokio::spawn(trigger(solo, Opening::default().start()));
            entries.push(Entry {
                trigger: format!("team-a/{name}"),
                filter: Arc::new(Filter::Everything),
                value: member.clone(),
            });
            members.push(member);
        }
        group.set_index(TriggerIndex::new(entries));
        let attached = |member: &Member| member.attached.load(Ordering::Acquire);
        eventually("both attached", || members.iter().all(|m| attached(m))).await;
        for _ in 0..40 {
            log.append(&[event("t")]).await.expect("appends");
        }
        let done = |deps: &Arc<crate::mesh::dispatch::DispatchDeps>| {
            outcomes(&deps.metrics, "undeliverable")
        };
        eventually("the fast Trigger got all 40", || done(&fast_deps) == 40).await;
        assert!(done(&slow_deps) < 40, "the slow one is still behind");
        eventually("the slow Trigger got all 40", || done(&slow_deps) == 40).await;
        eventually("the slow Trigger attached again", || attached(&members[1])).await;
        log.append(&[event("t")]).await.expect("appends");
        eventually("both got the next one", || {
            done(&fast_deps) == 41 && done(&slow_deps) == 41
        })
        .await;
        assert_eq!(
            (done(&fast_deps), done(&slow_deps)),
            (41, 41),
            "each event once"
        );
    }
}
