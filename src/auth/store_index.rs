//! A kind's objects in memory as key → value, filled by a list and kept by a
//! watch, so authentication never reads the store. The AccessTokens (digest →
//! scope) and the revoked certificates (fingerprint) are two such indexes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::core::DynamicObject;
use tokio::sync::watch;

use crate::locks;
use crate::resources::KindSpec;
use crate::store::{LabelSelector, Store, WatchEventType};

/// What an object contributes to the index, if anything.
pub type EntryOf<V> = fn(&DynamicObject) -> Option<(String, V)>;

#[derive(Clone)]
pub struct StoreIndex<V> {
    by_key: Arc<RwLock<HashMap<String, V>>>,
    filled: watch::Receiver<bool>,
}

impl<V: Clone + Send + Sync + 'static> StoreIndex<V> {
    /// Starts following the store; `is_filled` once the first list is in.
    pub fn follow(store: Arc<dyn Store>, kind: &'static KindSpec, entry: EntryOf<V>) -> Self {
        let by_key = Arc::new(RwLock::new(HashMap::new()));
        let (filled_tx, filled) = watch::channel(false);
        tokio::spawn(follow(store, kind, entry, by_key.clone(), filled_tx));
        Self { by_key, filled }
    }

    pub fn is_filled(&self) -> bool {
        *self.filled.borrow()
    }

    pub fn get(&self, key: &str) -> Option<V> {
        locks::read(&self.by_key).get(key).cloned()
    }

    /// Forgets every entry `gone` names, at once: a deletion answered to its
    /// caller must not leave what it removed working until the watch catches up.
    pub fn forget(&self, gone: impl Fn(&str, &V) -> bool) {
        locks::write(&self.by_key).retain(|key, value| !gone(key, value));
    }

    /// Adds an entry at once, for the same reason (the watch adds it again).
    pub fn remember(&self, key: String, value: V) {
        locks::write(&self.by_key).insert(key, value);
    }
}

async fn follow<V>(
    store: Arc<dyn Store>,
    kind: &'static KindSpec,
    entry: EntryOf<V>,
    by_key: Arc<RwLock<HashMap<String, V>>>,
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
        let fresh: HashMap<String, V> = listed.items.iter().filter_map(entry).collect();
        *locks::write(&by_key) = fresh;
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
            let Some((key, value)) = entry(&event.object) else {
                continue;
            };
            let mut map = locks::write(&by_key);
            if event.type_ == WatchEventType::Deleted {
                map.remove(&key);
            } else {
                map.insert(key, value);
            }
        }
    }
}
