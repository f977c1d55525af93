//! The change log: the last few thousand changes, kept so a watch can resume from a
//! recent resourceVersion, and a broadcast channel that live watches follow. Both are
//! written under the store's lock, in commit order, so a watch sees no gap.
//!
//! The log is bounded by count and by size: a caller writing large objects
//! (a namespace's token may) must not make the last 4,096 of them resident.
//! The channel carries weak references, so its ring keeps no object alive
//! the log let go of (only the small `Change` allocations until their slots
//! are reused); a watcher that reaches a change no longer held ends as one
//! that fell behind does, and lists again.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use kube::core::DynamicObject;
use tokio::sync::broadcast;

use crate::store::{StoreError, WatchEventType};

/// How many changes a watch may fall behind or resume from.
const HISTORY: usize = 4096;

/// How many bytes of objects (as stored, JSON) the log holds at most, the
/// last commit always: some 16,000 ordinary objects of 2 KiB, so the count
/// is what bounds it unless objects are large.
const HISTORY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct Change {
    pub revision: u64,
    pub kind_key: String,
    pub namespace: String,
    pub type_: WatchEventType,
    pub object: DynamicObject,
    /// What a modification replaced, kept only when it changed the labels
    /// (else it matches every selector as the object does): a watch with a
    /// label selector sees an object that starts matching as ADDED and one
    /// that stops as DELETED.
    pub previous: Option<DynamicObject>,
    /// Its size as stored, for the log's bound.
    pub bytes: usize,
}

/// Changes to replay, then a receiver for the live ones.
pub type Followed = (Vec<Arc<Change>>, broadcast::Receiver<Weak<Change>>);

pub struct ChangeLog {
    history: VecDeque<Arc<Change>>,
    /// The bytes of the changes in `history`.
    held: usize,
    sender: broadcast::Sender<Weak<Change>>,
}

impl ChangeLog {
    pub fn new() -> Self {
        Self {
            history: VecDeque::with_capacity(HISTORY),
            held: 0,
            sender: broadcast::channel(HISTORY).0,
        }
    }

    /// The changes of one commit, in order. The whole commit stays held,
    /// however large, until a later one pushes it out: a watcher that keeps
    /// up never misses a change.
    pub fn publish(&mut self, changes: Vec<Change>) {
        let changes: Vec<Arc<Change>> = changes.into_iter().map(Arc::new).collect();
        for change in &changes {
            self.held += change.bytes;
            self.history.push_back(change.clone());
        }
        while self.history.len() > changes.len()
            && (self.history.len() > HISTORY || self.held > HISTORY_BYTES)
        {
            if let Some(oldest) = self.history.pop_front() {
                self.held -= oldest.bytes;
            }
        }
        for change in &changes {
            // No receivers is normal: nobody watches yet.
            let _ = self.sender.send(Arc::downgrade(change));
        }
    }

    /// The changes after `since` still held, and a receiver for every later one.
    /// Fails when `since` is older than the history reaches back, or newer
    /// than the store has reached.
    pub fn follow_from(&self, since: u64, current: u64) -> Result<Followed, StoreError> {
        if since > current {
            return Err(StoreError::TooLarge {
                asked: since,
                current,
            });
        }
        let oldest_kept = self.history.front().map_or(current + 1, |c| c.revision);
        if since < current && since + 1 < oldest_kept {
            return Err(StoreError::Expired(since.to_string()));
        }
        let replay = self
            .history
            .iter()
            .filter(|c| c.revision > since)
            .cloned()
            .collect();
        Ok((replay, self.sender.subscribe()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Weak<Change>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(revision: u64, bytes: usize) -> Change {
        let object = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{revision}")}
        }))
        .expect("an object");
        Change {
            revision,
            kind_key: "configmaps".into(),
            namespace: "team-a".into(),
            type_: WatchEventType::Added,
            object,
            previous: None,
            bytes,
        }
    }

    #[test]
    fn large_changes_are_held_up_to_the_byte_bound_and_let_go_of_entirely() {
        let mut log = ChangeLog::new();
        let mut live = log.subscribe();
        let large = HISTORY_BYTES / 4 + 1;
        for revision in 1..=10 {
            log.publish(vec![change(revision, large)]);
        }
        assert_eq!(log.history.len(), 3, "three fit in the bound, not four");
        assert!(log.held <= HISTORY_BYTES);
        // The channel's ring does not keep what the log let go of.
        let first = live.try_recv().expect("the first change's reference");
        assert!(first.upgrade().is_none());
        // Resuming from before what is held is refused, as a too-old
        // resourceVersion is; from what is held, the rest is replayed.
        assert!(matches!(
            log.follow_from(5, 10),
            Err(StoreError::Expired(_))
        ));
        let (replay, _) = log.follow_from(7, 10).expect("held");
        let revisions: Vec<u64> = replay.iter().map(|c| c.revision).collect();
        assert_eq!(revisions, [8, 9, 10]);
    }

    #[test]
    fn the_newest_change_is_held_however_large() {
        let mut log = ChangeLog::new();
        log.publish(vec![change(1, 10)]);
        log.publish(vec![change(2, HISTORY_BYTES * 2)]);
        assert_eq!(log.history.len(), 1);
        assert_eq!(log.history[0].revision, 2);
        log.publish(vec![change(3, 10)]);
        assert_eq!(
            log.history.len(),
            1,
            "the large one goes once it is not the newest"
        );
        assert_eq!(log.held, 10);
    }

    #[test]
    fn a_commit_is_held_whole_however_large() {
        let mut log = ChangeLog::new();
        let mut live = log.subscribe();
        let large = HISTORY_BYTES / 4;
        log.publish((1..=6).map(|revision| change(revision, large)).collect());
        assert_eq!(log.history.len(), 6);
        for revision in 1..=6 {
            let held = live.try_recv().expect("sent").upgrade().expect("held");
            assert_eq!(held.revision, revision);
        }
        log.publish(vec![change(7, 10)]);
        assert_eq!(log.history.len(), 4, "the next commit lets the oldest go");
    }

    #[test]
    fn ordinary_changes_are_bounded_by_count() {
        let mut log = ChangeLog::new();
        for revision in 1..=(HISTORY as u64 + 10) {
            log.publish(vec![change(revision, 2048)]);
        }
        assert_eq!(log.history.len(), HISTORY);
        assert_eq!(log.history[0].revision, 11);
        assert_eq!(log.held, HISTORY * 2048);
    }
}
