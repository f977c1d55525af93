//! Channel→Broker relays done in the append call while they are caught up
//! (`sequencer`): a Channel's new events are numbered into each such Broker's
//! log in the same call, go to the writer in the same command, and the
//! relay's cursor moves in that commit. That saves the relay task's read, its
//! own append and the commit it waits for. A relay whose Broker is full (its
//! namespace's disk budget), or whose task opens its cursor again, is
//! detached: its task takes over from its cursor, as it does while it is
//! behind.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::cursor::Cursor;

/// A caught-up relay as the writer keeps it.
pub struct Fanout {
    pub cursor: Arc<Cursor>,
    /// The Broker's log.
    pub to: i64,
    /// Dropped when the writer stops relaying (one per attach, so no
    /// wake-up outlives it); the relay's task then goes on from its cursor.
    pub _detached: oneshot::Sender<()>,
}

/// The attached relays, by the Channel log they read.
#[derive(Default)]
pub struct Fanouts(HashMap<i64, Vec<Fanout>>);

impl Fanouts {
    pub fn attach(&mut self, from: i64, fanout: Fanout) {
        self.detach_consumer(&fanout.cursor.consumer);
        self.0.entry(from).or_default().push(fanout);
    }

    /// The relays reading `from`, to take and put back.
    pub fn take(&mut self, from: i64) -> Vec<Fanout> {
        self.0.remove(&from).unwrap_or_default()
    }

    pub fn put_back(&mut self, from: i64, fanouts: Vec<Fanout>) {
        if !fanouts.is_empty() {
            self.0.insert(from, fanouts);
        }
    }

    /// The consumer's cursor is opened again (its task started anew).
    pub fn detach_consumer(&mut self, consumer: &str) {
        self.detach_where(|fanout| fanout.cursor.consumer == consumer);
    }

    /// Relays from or to a log that is gone.
    pub fn detach_log(&mut self, log: i64) {
        self.0.remove(&log);
        self.detach_where(|fanout| fanout.to == log);
    }

    /// Relays whose consumers are no longer kept.
    pub fn retain(&mut self, keep: &HashSet<String>) {
        self.detach_where(|fanout| !keep.contains(&fanout.cursor.consumer));
    }

    fn detach_where(&mut self, detach: impl Fn(&Fanout) -> bool) {
        for fanouts in self.0.values_mut() {
            fanouts.retain(|fanout| !detach(fanout));
        }
        self.0.retain(|_, fanouts| !fanouts.is_empty());
    }
}
