//! A consumer's place in a log. Events are read in order but delivered
//! concurrently and may finish in any order, so the position kept is the
//! lowest event in delivery that is not waiting for a retry: everything
//! before it was delivered, dead-lettered, filtered out — or waits for a
//! retry, and the cursor keeps each such event's failed attempts and due
//! time, written in the same commit as any position past it. After a crash
//! the consumer starts there again, and what was in flight is delivered
//! again (at least once); an event that was waiting for a retry is read
//! back by its number and resumes its schedule. So one event on a long
//! retry schedule holds neither the position (a crash would deliver all
//! after it again) nor the log behind it (the writer keeps only the batch
//! that holds it).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::locks::lock;
use crate::mesh::dispatch::RetryDue;

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the last event the log holds.
    End,
    /// At the first event appended at or after this time (milliseconds since
    /// the Unix epoch) that the log still holds.
    Since(i64),
}

/// The Trigger or Subscription a cursor reads for, as metrics name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `trigger` or `subscription`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

pub struct Cursor {
    pub consumer: String,
    owner: OnceLock<Owner>,
    pub(super) log_id: i64,
    state: Mutex<State>,
    /// Moved since the writer last wrote it.
    dirty: AtomicBool,
    /// Retry schedules changed since the writer last wrote them.
    retries_dirty: AtomicBool,
}

/// What a flush writes of a cursor (`Cursor::unwritten_within`).
pub(super) struct Unwritten {
    pub position: Option<u64>,
    pub retries: Option<Vec<(u64, RetryDue)>>,
}

struct State {
    /// Handed to delivery and not settled yet.
    pending: BTreeSet<u64>,
    /// The next event to read.
    read_to: u64,
    /// What the file holds.
    persisted: u64,
    /// Events in delivery that wait for a retry.
    retries: HashMap<u64, RetryDue>,
}

impl State {
    fn position(&self) -> u64 {
        self.pending
            .iter()
            .find(|seq| !self.retries.contains_key(seq))
            .copied()
            .unwrap_or(self.read_to)
    }
}

impl Cursor {
    pub(super) fn new(
        consumer: String,
        log_id: i64,
        position: u64,
        retries: HashMap<u64, RetryDue>,
    ) -> Self {
        Self {
            consumer,
            owner: OnceLock::new(),
            log_id,
            state: Mutex::new(State {
                pending: BTreeSet::new(),
                read_to: position,
                persisted: position,
                retries,
            }),
            dirty: AtomicBool::new(false),
            retries_dirty: AtomicBool::new(false),
        }
    }

    /// Names whom the cursor reads for (once; the name does not change while
    /// its consumer runs).
    pub fn owned_by(&self, owner: Owner) {
        let _ = self.owner.set(owner);
    }

    pub fn owner(&self) -> Option<&Owner> {
        self.owner.get()
    }

    /// The next event to read.
    pub fn read_to(&self) -> u64 {
        lock(&self.state).read_to
    }

    /// The lowest event in delivery that is not waiting for a retry.
    pub fn position(&self) -> u64 {
        lock(&self.state).position()
    }

    /// The events below the position that wait for a retry: read back by
    /// number when the consumer starts.
    pub fn waiting_below_position(&self) -> Vec<u64> {
        let state = lock(&self.state);
        let position = state.position();
        let mut waiting: Vec<u64> = state
            .retries
            .keys()
            .copied()
            .filter(|seq| *seq < position)
            .collect();
        waiting.sort_unstable();
        waiting
    }

    /// `seq` is handed to delivery.
    pub fn take(&self, seq: u64) {
        lock(&self.state).pending.insert(seq);
    }

    /// Everything before `next` was read (taken or passed over). A schedule
    /// kept for an event passed over without being taken goes: its consumer
    /// no longer wants it (its filter changed before a restart), and it would
    /// hold its batch and count as lag for ever.
    pub fn passed(&self, next: u64) {
        let mut state = lock(&self.state);
        if next <= state.read_to {
            return;
        }
        if !state.retries.is_empty() {
            let from = state.read_to;
            let State {
                retries, pending, ..
            } = &mut *state;
            let before = retries.len();
            retries.retain(|seq, _| !(from..next).contains(seq) || pending.contains(seq));
            if retries.len() != before {
                self.retries_dirty.store(true, Ordering::Release);
            }
        }
        state.read_to = next;
        self.dirty.store(true, Ordering::Release);
    }

    /// `seq`'s delivery is over.
    pub fn settle(&self, seq: u64) {
        let mut state = lock(&self.state);
        state.pending.remove(&seq);
        if state.retries.remove(&seq).is_some() {
            self.retries_dirty.store(true, Ordering::Release);
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// `seq`'s delivery waits for a retry. The flags are set under the
    /// lock: the writer reads the position and the schedules together, so
    /// it never writes a position past an event whose schedule it missed.
    pub fn retrying(&self, seq: u64, due: RetryDue) {
        let mut state = lock(&self.state);
        state.retries.insert(seq, due);
        self.retries_dirty.store(true, Ordering::Release);
        self.dirty.store(true, Ordering::Release);
    }

    /// Where `seq`'s retry schedule stood when the consumer last stopped.
    pub fn resume(&self, seq: u64) -> Option<RetryDue> {
        lock(&self.state).retries.get(&seq).copied()
    }

    /// What to write, read together: the position, when it moved since it
    /// was last written, at most `stored` (beyond it the file does not hold
    /// the events yet: the rest is written at a later flush); and the retry
    /// schedules, when they changed, of events below `stored` (a schedule
    /// for an event the file does not hold yet waits for a later flush).
    /// Every event the position passed that waits for a retry has its
    /// schedule in the same commit or an earlier one.
    pub(super) fn unwritten_within(&self, stored: u64) -> Unwritten {
        let state = lock(&self.state);
        let retries = self.retries_dirty.swap(false, Ordering::AcqRel).then(|| {
            let (written, later): (Vec<_>, Vec<_>) = state
                .retries
                .iter()
                .map(|(seq, due)| (*seq, *due))
                .partition(|(seq, _)| *seq < stored);
            if !later.is_empty() {
                self.retries_dirty.store(true, Ordering::Release);
            }
            written
        });
        let position = self
            .dirty
            .swap(false, Ordering::AcqRel)
            .then(|| {
                let position = state.position();
                if position > stored {
                    self.dirty.store(true, Ordering::Release);
                }
                position.min(stored)
            })
            .filter(|position| *position != state.persisted);
        Unwritten { position, retries }
    }

    /// Everything to write, dirty or not: the position (at most `stored`)
    /// and the schedules of events below `stored`, read together.
    pub(super) fn whole_within(&self, stored: u64) -> (u64, Vec<(u64, RetryDue)>) {
        let state = lock(&self.state);
        let retries = state
            .retries
            .iter()
            .map(|(seq, due)| (*seq, *due))
            .filter(|(seq, _)| *seq < stored)
            .collect();
        // Never back behind what was written (a relay's cursor is moved
        // by the writer itself).
        let position = state.position().max(state.persisted).min(stored);
        (position, retries)
    }

    /// The file now holds `position`.
    pub(super) fn written(&self, position: u64) {
        lock(&self.state).persisted = position;
    }

    /// Writing failed: try again at the next flush.
    pub(super) fn unwritten_again(&self) {
        self.dirty.store(true, Ordering::Release);
        self.retries_dirty.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = u64::MAX;

    fn due(failed: u32) -> RetryDue {
        RetryDue {
            failed,
            due_ms: 5_000,
        }
    }

    #[test]
    fn the_position_is_the_lowest_event_not_settled() {
        let cursor = Cursor::new("trigger/a".into(), 1, 10, HashMap::new());
        for seq in 10..15 {
            cursor.take(seq);
        }
        cursor.passed(15);
        assert_eq!(cursor.position(), 10);
        cursor.settle(12);
        cursor.settle(11);
        assert_eq!(cursor.position(), 10, "10 is still in delivery");
        cursor.settle(10);
        assert_eq!(cursor.position(), 13);
        cursor.settle(13);
        cursor.settle(14);
        assert_eq!(cursor.position(), 15, "all settled: where reading is");
    }

    #[test]
    fn only_a_moved_position_is_written_again() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        assert_eq!(cursor.unwritten_within(ALL).position, None);
        cursor.passed(3);
        assert_eq!(cursor.unwritten_within(ALL).position, Some(3));
        cursor.written(3);
        assert_eq!(cursor.unwritten_within(ALL).position, None, "not dirty");
        cursor.take(3);
        cursor.passed(4);
        assert_eq!(
            cursor.unwritten_within(ALL).position,
            None,
            "dirty, but still at 3"
        );
        cursor.settle(3);
        assert_eq!(cursor.unwritten_within(ALL).position, Some(4));
        cursor.unwritten_again();
        assert_eq!(
            cursor.unwritten_within(ALL).position,
            Some(4),
            "a failed write is retried"
        );
    }

    #[test]
    fn a_position_is_written_no_further_than_the_file_holds() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        cursor.passed(10);
        assert_eq!(
            cursor.unwritten_within(6).position,
            Some(6),
            "6–9 are not stored yet"
        );
        cursor.written(6);
        assert_eq!(
            cursor.unwritten_within(6).position,
            None,
            "nothing more until they are"
        );
        assert_eq!(
            cursor.unwritten_within(10).position,
            Some(10),
            "still to write once they are stored"
        );
    }

    #[test]
    fn a_retry_schedule_is_written_once_its_event_is_stored() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        cursor.take(5);
        cursor.retrying(5, due(1));
        assert_eq!(
            cursor.unwritten_within(5).retries,
            Some(vec![]),
            "5 is not stored yet"
        );
        assert_eq!(
            cursor.unwritten_within(6).retries,
            Some(vec![(5, due(1))]),
            "it is now"
        );
        assert_eq!(cursor.unwritten_within(6).retries, None, "written once");
    }

    #[test]
    fn a_retry_schedule_is_kept_until_its_event_settles() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        assert_eq!(cursor.unwritten_within(10).retries, None);
        cursor.take(0);
        cursor.retrying(0, due(1));
        assert_eq!(cursor.resume(0), Some(due(1)));
        assert_eq!(cursor.unwritten_within(10).retries, Some(vec![(0, due(1))]));
        assert_eq!(cursor.unwritten_within(10).retries, None, "written once");
        cursor.settle(0);
        assert_eq!(cursor.resume(0), None);
        assert_eq!(
            cursor.unwritten_within(10).retries,
            Some(vec![]),
            "its row goes"
        );
    }

    #[test]
    fn an_event_waiting_for_a_retry_holds_back_neither_the_position_nor_its_schedule() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        for seq in 0..4 {
            cursor.take(seq);
        }
        cursor.passed(4);
        cursor.retrying(0, due(1));
        for seq in 1..4 {
            cursor.settle(seq);
        }
        assert_eq!(cursor.position(), 4, "0 waits for a retry");
        let flushed = cursor.unwritten_within(10);
        assert_eq!(flushed.position, Some(4));
        assert_eq!(
            flushed.retries,
            Some(vec![(0, due(1))]),
            "written with the position past it"
        );
        cursor.written(4);
        assert_eq!(cursor.waiting_below_position(), vec![0]);
        // A retry attempt in flight still waits; the next one fails again.
        cursor.retrying(0, due(2));
        assert_eq!(cursor.position(), 4);
        assert_eq!(cursor.unwritten_within(10).retries, Some(vec![(0, due(2))]));
        cursor.settle(0);
        assert!(cursor.waiting_below_position().is_empty());
        assert_eq!(cursor.unwritten_within(10).retries, Some(vec![]));
    }

    #[test]
    fn a_schedule_of_an_event_passed_over_goes() {
        let retries = HashMap::from([(6, due(2)), (7, due(1))]);
        let cursor = Cursor::new("trigger/a".into(), 1, 5, retries);
        cursor.take(7);
        cursor.passed(8);
        assert_eq!(cursor.resume(6), None, "6 was passed over: not wanted now");
        assert_eq!(cursor.resume(7), Some(due(1)), "7 was taken again");
        assert_eq!(cursor.unwritten_within(10).retries, Some(vec![(7, due(1))]));
    }

    #[test]
    fn a_cursor_opened_again_finds_its_waiting_events_below_its_position() {
        let retries = HashMap::from([(2, due(3)), (7, due(1))]);
        let cursor = Cursor::new("trigger/a".into(), 1, 5, retries);
        assert_eq!(cursor.position(), 5);
        assert_eq!(
            cursor.waiting_below_position(),
            vec![2],
            "7 is read in order"
        );
        cursor.take(2);
        assert_eq!(cursor.position(), 5, "2 waits for its retry");
        assert_eq!(cursor.resume(2), Some(due(3)));
    }
}
