//! A consumer's place in a log. Events are read in order but delivered
//! concurrently and may finish in any order, so the position kept is the
//! lowest event not yet settled: everything before it was delivered,
//! dead-lettered or filtered out. After a crash the consumer starts there
//! again, and what was in flight is delivered again (at least once); an
//! event whose delivery was waiting for a retry resumes its schedule (the
//! cursor keeps each such event's failed attempts and due time).

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

    /// The lowest event not settled.
    pub fn position(&self) -> u64 {
        let state = lock(&self.state);
        state.pending.first().copied().unwrap_or(state.read_to)
    }

    /// `seq` is handed to delivery.
    pub fn take(&self, seq: u64) {
        lock(&self.state).pending.insert(seq);
    }

    /// Everything before `next` was read (taken or passed over).
    pub fn passed(&self, next: u64) {
        let mut state = lock(&self.state);
        if next > state.read_to {
            state.read_to = next;
            self.dirty.store(true, Ordering::Release);
        }
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

    /// `seq`'s delivery waits for a retry.
    pub fn retrying(&self, seq: u64, due: RetryDue) {
        lock(&self.state).retries.insert(seq, due);
        self.retries_dirty.store(true, Ordering::Release);
    }

    /// Where `seq`'s retry schedule stood when the consumer last stopped.
    pub fn resume(&self, seq: u64) -> Option<RetryDue> {
        lock(&self.state).retries.get(&seq).copied()
    }

    /// The position to write, when it moved since it was last written.
    pub(super) fn unwritten(&self) -> Option<u64> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let position = self.position();
        (position != lock(&self.state).persisted).then_some(position)
    }

    /// The position to write, at most `stored` (beyond it the file does
    /// not hold the events yet: the rest is written at a later flush).
    pub(super) fn unwritten_within(&self, stored: u64) -> Option<u64> {
        let position = self.unwritten()?;
        if position > stored {
            self.dirty.store(true, Ordering::Release);
        }
        let position = position.min(stored);
        (position != lock(&self.state).persisted).then_some(position)
    }

    /// The file now holds `position`.
    pub(super) fn written(&self, position: u64) {
        lock(&self.state).persisted = position;
    }

    /// The retry schedules to write, when they changed since last written:
    /// those of events below `stored` (a schedule for an event the file does
    /// not hold yet waits for a later flush).
    pub(super) fn unwritten_retries(&self, stored: u64) -> Option<Vec<(u64, RetryDue)>> {
        if !self.retries_dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let state = lock(&self.state);
        let (written, later): (Vec<_>, Vec<_>) = state
            .retries
            .iter()
            .map(|(seq, due)| (*seq, *due))
            .partition(|(seq, _)| *seq < stored);
        if !later.is_empty() {
            self.retries_dirty.store(true, Ordering::Release);
        }
        Some(written)
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
        assert_eq!(cursor.unwritten(), None);
        cursor.passed(3);
        assert_eq!(cursor.unwritten(), Some(3));
        cursor.written(3);
        assert_eq!(cursor.unwritten(), None, "not dirty");
        cursor.take(3);
        cursor.passed(4);
        assert_eq!(cursor.unwritten(), None, "dirty, but still at 3");
        cursor.settle(3);
        assert_eq!(cursor.unwritten(), Some(4));
        cursor.unwritten_again();
        assert_eq!(cursor.unwritten(), Some(4), "a failed write is retried");
    }

    #[test]
    fn a_position_is_written_no_further_than_the_file_holds() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        cursor.passed(10);
        assert_eq!(
            cursor.unwritten_within(6),
            Some(6),
            "6–9 are not stored yet"
        );
        cursor.written(6);
        assert_eq!(
            cursor.unwritten_within(6),
            None,
            "nothing more until they are"
        );
        assert_eq!(
            cursor.unwritten_within(10),
            Some(10),
            "still to write once they are stored"
        );
    }

    #[test]
    fn a_retry_schedule_is_written_once_its_event_is_stored() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        cursor.take(5);
        let due = RetryDue {
            failed: 1,
            due_ms: 5_000,
        };
        cursor.retrying(5, due);
        assert_eq!(
            cursor.unwritten_retries(5),
            Some(vec![]),
            "5 is not stored yet"
        );
        assert_eq!(
            cursor.unwritten_retries(6),
            Some(vec![(5, due)]),
            "it is now"
        );
        assert_eq!(cursor.unwritten_retries(6), None, "written once");
    }

    #[test]
    fn a_retry_schedule_is_kept_until_its_event_settles() {
        let cursor = Cursor::new("trigger/a".into(), 1, 0, HashMap::new());
        assert_eq!(cursor.unwritten_retries(10), None);
        cursor.take(0);
        let due = RetryDue {
            failed: 1,
            due_ms: 5_000,
        };
        cursor.retrying(0, due);
        assert_eq!(cursor.resume(0), Some(due));
        assert_eq!(cursor.unwritten_retries(10), Some(vec![(0, due)]));
        assert_eq!(cursor.unwritten_retries(10), None, "written once");
        cursor.settle(0);
        assert_eq!(cursor.resume(0), None);
        assert_eq!(cursor.unwritten_retries(10), Some(vec![]), "its row goes");
    }
}
