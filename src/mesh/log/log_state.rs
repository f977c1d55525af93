//! A log's state that its handles, the sequencer and the writer thread
//! share: its recent events in memory, where its numbered events end, and
//! the bytes it holds against its disk budget. Appends extend it (through
//! the sequencer), the writer trims the tail after each commit, readers look
//! at it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::budget::DiskBudget;
use super::record::Record;
use crate::locks::lock;

/// How many recent events each log keeps in memory for consumers that keep up.
const TAIL_EVENTS: usize = 2048;
/// And how many bytes of them, in their stored form: an event in memory
/// costs about three times that (its data, the request's body, the stored
/// form), so large events cannot make the tail hold gigabytes (2,048 events
/// of a megabyte did).
const TAIL_BYTES: usize = 8 << 20;

/// A log's recent events and the bytes of their stored forms.
#[derive(Default)]
struct Tail {
    records: VecDeque<Record>,
    bytes: usize,
}

impl Tail {
    fn over(&self) -> bool {
        self.records.len() > TAIL_EVENTS || self.bytes > TAIL_BYTES
    }
}

fn weight(record: &Record) -> usize {
    record.event.structured_body().len()
}

pub struct LogState {
    pub id: i64,
    pub name: String,
    pub budget: Arc<DiskBudget>,
    /// Bytes this log holds on disk.
    bytes: AtomicU64,
    /// Events below this seq are numbered and may be read.
    end: watch::Sender<u64>,
    tail: Mutex<Tail>,
}

impl LogState {
    pub fn new(id: i64, name: String, budget: Arc<DiskBudget>, next_seq: u64) -> Self {
        Self {
            id,
            name,
            budget,
            bytes: AtomicU64::new(0),
            end: watch::Sender::new(next_seq),
            tail: Mutex::new(Tail::default()),
        }
    }

    pub fn end(&self) -> u64 {
        *self.end.borrow()
    }

    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Up to `limit` events from `from` on, if the tail still holds `from`.
    pub fn read_tail(&self, from: u64, limit: usize) -> Option<Vec<Record>> {
        let tail = lock(&self.tail);
        let first = tail.records.front()?.seq;
        if first > from {
            return None;
        }
        let skip = (from - first) as usize;
        Some(
            tail.records
                .iter()
                .skip(skip)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    /// Events found in the file at start-up, already counted against the budget.
    pub fn stored(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Release);
        self.budget.add(bytes);
    }

    /// `records` are numbered (the next event gets `end`): they may be read.
    pub fn publish(&self, records: Vec<Record>, end: u64) {
        let mut tail = lock(&self.tail);
        tail.bytes += records.iter().map(weight).sum::<usize>();
        tail.records.extend(records);
        drop(tail);
        self.end.send_replace(end);
    }

    /// A commit holds this log's events below `stored` (taking `bytes`).
    /// Answers the records that left the tail — only stored ones leave it,
    /// so whatever is not in the tail can be read from the file — for the
    /// caller to drop once it has nothing more urgent to do.
    pub fn stored_below(&self, stored: u64, bytes: u64) -> Vec<Record> {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
        let mut tail = lock(&self.tail);
        let mut evicted = Vec::new();
        while tail.over() && tail.records.front().is_some_and(|r| r.seq < stored) {
            if let Some(record) = tail.records.pop_front() {
                tail.bytes -= weight(&record);
                evicted.push(record);
            }
        }
        evicted
    }

    /// A trim freed `bytes`.
    pub fn trimmed(&self, bytes: u64) {
        self.budget.give_back(bytes);
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(bytes))
            });
    }

    /// The log is gone from the file: its bytes go back to the budget.
    pub fn dropped(&self) {
        self.budget.give_back(self.bytes());
    }
}
