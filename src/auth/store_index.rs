//! A kind's objects in memory as key → value, filled by a list and kept by a
//! watch, so authentication never reads the store. The AccessTokens (digest →
//! scope) and the revoked certificates (fingerprint) are two such indexes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::core::DynamicObject;
use tokio::sync::watch;

use crate::locks;
use crate::resources::KindSpec;
use crate::store::{LabelSelector, Store, WatchEventType};

/// What an object contributes to the index, if anything.
pub type EntryOf<V> = fn(&DynamicObject) -> Option<(String, V)>;

#[derive(Clone)]
pub struct StoreIndex<V> {
    entries: Arc<RwLock<Entries<V>>>,
    filled: watch::Receiver<bool>,
}

impl<V: Clone + Send + Sync + 'static> StoreIndex<V> {
    /// Starts following the store; `is_filled` once the first list is in.
    pub fn follow(store: Arc<dyn Store>, kind: &'static KindSpec, entry: EntryOf<V>) -> Self {
        let entries = Arc::new(RwLock::new(Entries::default()));
        let (filled_tx, filled) = watch::channel(false);
        tokio::spawn(follow(store, kind, entry, entries.clone(), filled_tx));
        Self { entries, filled }
    }

    pub fn is_filled(&self) -> bool {
        *self.filled.borrow()
    }

    pub fn get(&self, key: &str) -> Option<V> {
        locks::read(&self.entries).get(key)
    }

    /// Forgets every entry `gone` names, at once: a deletion answered to its
    /// caller must not leave what it removed working until the watch catches up.
    pub fn forget(&self, gone: impl Fn(&str, &V) -> bool) {
        locks::write(&self.entries).forget(gone);
    }

    /// Sets the entry of an object at once, for the same reason (the watch
    /// sets it again).
    pub fn remember(&self, namespace: Option<&str>, name: &str, key: String, value: V) {
        locks::write(&self.entries).set(object_id(namespace, name), Some((key, value)));
    }
}

/// `namespace/name` (`/name` for a cluster-scoped object).
fn object_id(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

/// The entries by key, and which object gave each. An object's entry is
/// replaced whole when the object changes: an AccessToken rewritten with a
/// new digest must not leave its old digest working. Several objects may give
/// one key (two revocations of one certificate); the key stays until the last
/// of them goes.
struct Entries<V> {
    by_key: HashMap<String, Vec<(String, V)>>,
    key_of_object: HashMap<String, String>,
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            key_of_object: HashMap::new(),
        }
    }
}

impl<V: Clone> Entries<V> {
    fn get(&self, key: &str) -> Option<V> {
        let holders = self.by_key.get(key)?;
        holders.last().map(|(_, value)| value.clone())
    }

    fn set(&mut self, object: String, entry: Option<(String, V)>) {
        self.remove(&object);
        if let Some((key, value)) = entry {
            self.by_key
                .entry(key.clone())
                .or_default()
                .push((object.clone(), value));
            self.key_of_object.insert(object, key);
        }
    }

    fn remove(&mut self, object: &str) {
        let Some(key) = self.key_of_object.remove(object) else {
            return;
        };
        if let Some(holders) = self.by_key.get_mut(&key) {
            holders.retain(|(holder, _)| holder != object);
            if holders.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }

    fn forget(&mut self, gone: impl Fn(&str, &V) -> bool) {
        self.by_key.retain(|key, holders| {
            holders.retain(|(_, value)| !gone(key, value));
            !holders.is_empty()
        });
        let by_key = &self.by_key;
        self.key_of_object.retain(|object, key| {
            by_key
                .get(key)
                .is_some_and(|holders| holders.iter().any(|(holder, _)| holder == object))
        });
    }

    fn refill(&mut self, objects: &[DynamicObject], entry: EntryOf<V>) {
        *self = Self::default();
        for object in objects {
            self.set(id_of(object), entry(object));
        }
    }
}

fn id_of(object: &DynamicObject) -> String {
    object_id(object.metadata.namespace.as_deref(), &object.name_any())
}

async fn follow<V: Clone>(
    store: Arc<dyn Store>,
    kind: &'static KindSpec,
    entry: EntryOf<V>,
    entries: Arc<RwLock<Entries<V>>>,
    filled: watch::Sender<bool>,
) {
    let everything = LabelSelector::everything();
    loop {
        let listed = match store.list(kind, None, &everything).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(kind = %kind.kind, %error, "listing for the credential cache failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        locks::write(&entries).refill(&listed.items, entry);
        filled.send_replace(true);
        let since = Some(listed.resource_version.as_str());
        let mut changes = match store.watch(kind, None, &everything, since).await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(kind = %kind.kind, %error, "watching for the credential cache failed; re-listing");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(Ok(event)) = changes.next().await {
            let object = id_of(&event.object);
            let given = match event.type_ {
                WatchEventType::Deleted => None,
                _ => entry(&event.object),
            };
            locks::write(&entries).set(object, given);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Entries<&'static str> {
        Entries::default()
    }

    #[test]
    fn a_changed_object_takes_its_old_key_away() {
        let mut index = entries();
        index.set("ns/t".into(), Some(("old".into(), "a")));
        index.set("ns/t".into(), Some(("new".into(), "b")));
        assert_eq!(index.get("old"), None);
        assert_eq!(index.get("new"), Some("b"));
        index.set("ns/t".into(), None);
        assert_eq!(index.get("new"), None);
        assert!(index.key_of_object.is_empty());
    }

    #[test]
    fn a_key_two_objects_give_stays_until_both_go() {
        let mut index = entries();
        index.set("/r1".into(), Some(("cert".into(), "r1")));
        index.set("/r2".into(), Some(("cert".into(), "r2")));
        index.set("/r1".into(), None);
        assert_eq!(index.get("cert"), Some("r2"));
        index.set("/r2".into(), None);
        assert_eq!(index.get("cert"), None);
    }

    #[test]
    fn forgetting_takes_the_entries_away_and_their_objects_can_come_back() {
        let mut index = entries();
        index.set("a/t".into(), Some(("d1".into(), "a")));
        index.set("b/t".into(), Some(("d2".into(), "b")));
        index.forget(|_, scope| *scope == "a");
        assert_eq!(index.get("d1"), None);
        assert_eq!(index.get("d2"), Some("b"));
        assert_eq!(index.key_of_object.len(), 1);
        index.set("a/t".into(), Some(("d3".into(), "a")));
        assert_eq!(index.get("d3"), Some("a"));
    }
}
