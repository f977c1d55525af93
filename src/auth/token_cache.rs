//! The AccessTokens in memory: digest → scope (namespace, and the Application for
//! an Application's credential), filled by a watch so authentication never reads
//! the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::locks;
use crate::resources::{AccessToken, kind_of};
use crate::store::{LabelSelector, Store, WatchEventType};

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    pub namespace: String,
    pub application: Option<String>,
}

#[derive(Clone)]
pub struct NamespaceTokens {
    by_digest: Arc<RwLock<HashMap<String, TokenScope>>>,
    filled: watch::Receiver<bool>,
}

impl NamespaceTokens {
    /// Starts following the store; `namespace_of` answers once the first list is in.
    pub fn follow(store: Arc<dyn Store>) -> Self {
        let by_digest = Arc::new(RwLock::new(HashMap::new()));
        let (filled_tx, filled) = watch::channel(false);
        tokio::spawn(follow_tokens(store, by_digest.clone(), filled_tx));
        Self { by_digest, filled }
    }

    pub fn is_filled(&self) -> bool {
        *self.filled.borrow()
    }

    /// Forgets every token whose scope `revoked` says is gone, at once: a
    /// deletion answered to its caller must not leave the token working until the
    /// watch catches up.
    pub fn revoke(&self, revoked: impl Fn(&str, &TokenScope) -> bool) {
        locks::write(&self.by_digest).retain(|digest, scope| !revoked(digest, scope));
    }

    pub fn scope_of(&self, digest: &str) -> Option<TokenScope> {
        locks::read(&self.by_digest).get(digest).cloned()
    }
}

async fn follow_tokens(
    store: Arc<dyn Store>,
    by_digest: Arc<RwLock<HashMap<String, TokenScope>>>,
    filled: watch::Sender<bool>,
) {
    let kind = kind_of::<AccessToken>();
    loop {
        // A fresh watch starts with every token as Added: rebuild from it.
        let listed = match store.list(kind, None, &LabelSelector::everything()).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, "listing access tokens failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut fresh = HashMap::new();
        for object in &listed.items {
            if let Some((digest, scope)) = entry(object) {
                fresh.insert(digest, scope);
            }
        }
        *locks::write(&by_digest) = fresh;
        filled.send_replace(true);
        let mut changes = match store
            .watch(
                kind,
                None,
                &LabelSelector::everything(),
                Some(&listed.resource_version),
            )
            .await
        {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(%error, "watching access tokens failed; re-listing");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(event) = changes.next().await {
            let Ok(event) = event else { break };
            let Some((digest, scope)) = entry(&event.object) else {
                continue;
            };
            let mut map = locks::write(&by_digest);
            if event.type_ == WatchEventType::Deleted {
                map.remove(&digest);
            } else {
                map.insert(digest, scope);
            }
        }
    }
}

fn entry(object: &kube::core::DynamicObject) -> Option<(String, TokenScope)> {
    let digest = object.data.get("status")?.get("tokenSha256")?.as_str()?;
    if digest.is_empty() {
        return None;
    }
    let application = object
        .data
        .get("spec")
        .and_then(|s| s.get("application"))
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    Some((
        digest.to_string(),
        TokenScope {
            namespace,
            application,
        },
    ))
}
