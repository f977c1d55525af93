//! The change log: the last few thousand changes, kept so a watch can resume from a
//! recent resourceVersion, and a broadcast channel that live watches follow. Both are
//! written under the store's lock, in commit order, so a watch sees no gap.

use std::collections::VecDeque;
use std::sync::Arc;

use kube::core::DynamicObject;
use tokio::sync::broadcast;

use crate::store::{StoreError, WatchEventType};

/// How many changes a watch may fall behind or resume from.
const HISTORY: usize = 4096;

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
}

/// Changes to replay, then a receiver for the live ones.
pub type Followed = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

pub struct ChangeLog {
    history: VecDeque<Arc<Change>>,
    sender: broadcast::Sender<Arc<Change>>,
}

impl ChangeLog {
    pub fn new() -> Self {
        Self {
            history: VecDeque::with_capacity(HISTORY),
            sender: broadcast::channel(HISTORY).0,
        }
    }

    pub fn publish(&mut self, change: Change) {
        let change = Arc::new(change);
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // No receivers is normal: nobody watches yet.
        let _ = self.sender.send(change);
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

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }
}
