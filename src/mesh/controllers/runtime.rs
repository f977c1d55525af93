//! The controller loop: watch sources (re-listing after any break, which doubles as
//! a resync), a de-duplicating queue of keys, one reconcile at a time, requeue as a
//! return value, errors retried with per-key backoff and never stopping the loop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;
use kube::core::DynamicObject;
use tokio::sync::mpsc;

use crate::resources::KindSpec;
use crate::server::Shutdown;
use crate::store::{LabelSelector, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn of(object: &DynamicObject) -> Self {
        Self {
            namespace: object.metadata.namespace.clone(),
            name: object.metadata.name.clone().unwrap_or_default(),
        }
    }

    pub fn cluster(name: &str) -> Self {
        Self {
            namespace: None,
            name: name.to_string(),
        }
    }

    pub fn namespaced(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

type Mapper = Arc<dyn Fn(DynamicObject) -> BoxFuture<'static, Vec<ObjectKey>> + Send + Sync>;

/// A kind whose changes enqueue keys of the controller's primary kind.
pub struct Source {
    kind: &'static KindSpec,
    map: Mapper,
}

impl Source {
    /// The controller's own kind: a change enqueues the changed object.
    pub fn primary(kind: &'static KindSpec) -> Self {
        Self::mapped(kind, |object| vec![ObjectKey::of(object)])
    }

    pub fn mapped(
        kind: &'static KindSpec,
        map: impl Fn(&DynamicObject) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self {
        let map = Arc::new(map);
        Self {
            kind,
            map: Arc::new(move |object| {
                let keys = map(&object);
                Box::pin(async move { keys })
            }),
        }
    }

    /// For mappings that must read the store (the Triggers of a changed Broker).
    pub fn mapped_async<F, Fut>(kind: &'static KindSpec, map: F) -> Self
    where
        F: Fn(DynamicObject) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<ObjectKey>> + Send + 'static,
    {
        Self {
            kind,
            map: Arc::new(move |object| Box::pin(map(object))),
        }
    }
}

pub enum Requeue {
    Done,
    After(Duration),
}

#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError>;
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(30);

pub fn spawn_controller(
    name: &'static str,
    store: Arc<dyn Store>,
    sources: Vec<Source>,
    reconciler: Arc<dyn Reconciler>,
    shutdown: Shutdown,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let queue = Queue {
        sender,
        pending: Arc::new(Mutex::new(HashSet::new())),
    };
    for source in sources {
        tokio::spawn(follow(
            name,
            store.clone(),
            source,
            queue.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(work(name, receiver, queue, reconciler, shutdown));
}

#[derive(Clone)]
struct Queue {
    sender: mpsc::UnboundedSender<ObjectKey>,
    pending: Arc<Mutex<HashSet<ObjectKey>>>,
}

impl Queue {
    fn push(&self, key: ObjectKey) {
        let fresh = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        if fresh {
            // Err: the worker is gone because the server is shutting down.
            let _ = self.sender.send(key);
        }
    }

    fn taken(&self, key: &ObjectKey) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn push_after(&self, key: ObjectKey, delay: Duration) {
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.push(key);
        });
    }
}

async fn follow(
    name: &'static str,
    store: Arc<dyn Store>,
    source: Source,
    queue: Queue,
    shutdown: Shutdown,
) {
    loop {
        if shutdown.is_down() {
            return;
        }
        match store
            .watch(source.kind, None, &LabelSelector::everything(), None)
            .await
        {
            Ok(mut changes) => loop {
                let next = tokio::select! {
                    next = changes.next() => next,
                    () = shutdown.clone().wait() => return,
                };
                match next {
                    Some(Ok(event)) => {
                        for key in (source.map)(event.object).await {
                            queue.push(key);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::debug!(controller = name, %error, "watch broke; re-listing");
                        break;
                    }
                    None => break,
                }
            },
            Err(error) => {
                tracing::warn!(controller = name, %error, kind = %source.kind.kind, "watch failed; retrying")
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn work(
    name: &'static str,
    mut receiver: mpsc::UnboundedReceiver<ObjectKey>,
    queue: Queue,
    reconciler: Arc<dyn Reconciler>,
    shutdown: Shutdown,
) {
    let mut failures: HashMap<ObjectKey, u32> = HashMap::new();
    loop {
        let key = tokio::select! {
            key = receiver.recv() => match key { Some(key) => key, None => return },
            () = shutdown.clone().wait() => return,
        };
        queue.taken(&key);
        match reconciler.reconcile(&key).await {
            Ok(requeue) => {
                failures.remove(&key);
                if let Requeue::After(delay) = requeue {
                    queue.push_after(key, delay);
                }
            }
            Err(error) => {
                let count = failures.entry(key.clone()).or_default();
                *count = count.saturating_add(1);
                let delay = FIRST_RETRY
                    .saturating_mul(2u32.saturating_pow(*count - 1))
                    .min(LAST_RETRY);
                tracing::warn!(controller = name, key = %key, %error, retry_in = ?delay, "reconcile failed");
                queue.push_after(key, delay);
            }
        }
    }
}
