//! The controller loop: watch sources (re-listing after any break, which doubles as
//! a resync), a de-duplicating queue of keys, one reconcile at a time, requeue as a
//! return value, errors retried with per-key backoff and never stopping the loop.
//! A key has at most one reconcile scheduled for later, the one its latest
//! reconcile asked for: a change reconciled meanwhile replaces it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::core::DynamicObject;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::locks;
use crate::resources::KindSpec;
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn of(object: &DynamicObject) -> Self {
        Self {
            namespace: object.metadata.namespace.clone(),
            name: object.name_any(),
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
        let fresh = locks::lock(&self.pending).insert(key.clone());
        if fresh {
            // Err: the worker is gone because the server is shutting down.
            let _ = self.sender.send(key);
        }
    }

    fn taken(&self, key: &ObjectKey) {
        locks::lock(&self.pending).remove(key);
    }
}

/// When keys are due for another reconcile: at most one time per key.
#[derive(Default)]
struct Schedule {
    due: BTreeSet<(Instant, ObjectKey)>,
    by_key: HashMap<ObjectKey, Instant>,
}

impl Schedule {
    /// Replaces whatever was scheduled for `key`.
    fn set(&mut self, key: ObjectKey, at: Instant) {
        self.cancel(&key);
        self.due.insert((at, key.clone()));
        self.by_key.insert(key, at);
    }

    fn cancel(&mut self, key: &ObjectKey) {
        if let Some(at) = self.by_key.remove(key) {
            self.due.remove(&(at, key.clone()));
        }
    }

    /// Waits until the earliest time scheduled (forever if none).
    async fn next_due(&self) {
        match self.due.first() {
            Some((at, _)) => tokio::time::sleep_until(*at).await,
            None => std::future::pending().await,
        }
    }

    /// The keys due by `now`, unscheduled.
    fn take_due(&mut self, now: Instant) -> Vec<ObjectKey> {
        let mut keys = Vec::new();
        while self.due.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, key)) = self.due.pop_first() {
                self.by_key.remove(&key);
                keys.push(key);
            }
        }
        keys
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
    let mut schedule = Schedule::default();
    loop {
        let key = tokio::select! {
            // In this order: shutdown stops the loop even with keys waiting, and
            // keys that fall due join the queue behind the changes already in it,
            // so neither starves the other.
            biased;
            () = shutdown.clone().wait() => return,
            () = schedule.next_due() => {
                // Through the queue, so a key also changed meanwhile runs once.
                for key in schedule.take_due(Instant::now()) {
                    queue.push(key);
                }
                continue;
            }
            key = receiver.recv() => match key { Some(key) => key, None => return },
        };
        queue.taken(&key);
        // This reconcile sees the latest state: what it asks for replaces what
        // an earlier one scheduled.
        schedule.cancel(&key);
        match reconciler.reconcile(&key).await {
            Ok(requeue) => {
                failures.remove(&key);
                if let Requeue::After(delay) = requeue {
                    schedule.set(key, Instant::now() + delay);
                }
            }
            Err(error) => {
                let count = failures.entry(key.clone()).or_default();
                *count = count.saturating_add(1);
                let delay = FIRST_RETRY
                    .saturating_mul(2u32.saturating_pow(*count - 1))
                    .min(LAST_RETRY);
                tracing::warn!(controller = name, key = %key, %error, retry_in = ?delay, "reconcile failed");
                schedule.set(key, Instant::now() + delay);
            }
        }
    }
}

/// The work loop on paused time, fed through its queue as the watches feed it,
/// with a scripted reconciler that records when each key was reconciled.
#[cfg(test)]
mod tests {
    use super::*;

    /// What the scripted reconciler does on a key's n-th reconcile (from 0).
    enum Answer {
        Done,
        After(Duration),
        Fail,
        /// Takes this long, then is done.
        Take(Duration),
    }

    type Script = Box<dyn Fn(&ObjectKey, usize) -> Answer + Send + Sync>;

    struct Scripted {
        start: Instant,
        calls: Mutex<Vec<(String, u64)>>,
        answer: Script,
    }

    impl Scripted {
        /// The virtual times (ms from the start) at which `name` was reconciled.
        fn times(&self, name: &str) -> Vec<u64> {
            let calls = self.calls.lock().expect("calls");
            calls
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, at)| *at)
                .collect()
        }
    }

    #[async_trait]
    impl Reconciler for Scripted {
        async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
            let nth = {
                let mut calls = self.calls.lock().expect("calls");
                let at = u64::try_from(self.start.elapsed().as_millis()).expect("ms");
                calls.push((key.name.clone(), at));
                calls.iter().filter(|(k, _)| *k == key.name).count() - 1
            };
            match (self.answer)(key, nth) {
                Answer::Done => Ok(Requeue::Done),
                Answer::After(delay) => Ok(Requeue::After(delay)),
                Answer::Fail => Err(StoreError::Internal("scripted failure".into())),
                Answer::Take(time) => {
                    tokio::time::sleep(time).await;
                    Ok(Requeue::Done)
                }
            }
        }
    }

    /// Starts the work loop; the shutdown sender keeps it running while held.
    fn start(
        answer: impl Fn(&ObjectKey, usize) -> Answer + Send + Sync + 'static,
    ) -> (Arc<Scripted>, Queue, tokio::sync::watch::Sender<bool>) {
        let reconciler = Arc::new(Scripted {
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = Queue {
            sender,
            pending: Arc::new(Mutex::new(HashSet::new())),
        };
        let (down, shutdown) = Shutdown::new();
        tokio::spawn(work(
            "test",
            receiver,
            queue.clone(),
            reconciler.clone(),
            shutdown,
        ));
        (reconciler, queue, down)
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::namespaced("team-a", name)
    }

    async fn at_ms(start: Instant, ms: u64) {
        tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_reconcile_is_retried_with_doubling_backoff_up_to_30_s() {
        let (reconciler, queue, _down) = start(|_, _| Answer::Fail);
        queue.push(key("a"));
        at_ms(reconciler.start, 90_000).await;
        assert_eq!(
            reconciler.times("a"),
            [
                0, 100, 300, 700, 1_500, 3_100, 6_300, 12_700, 25_500, 51_100, 81_100
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_backoff() {
        let (reconciler, queue, _down) = start(|_, nth| match nth {
            0 | 1 | 3 => Answer::Fail,
            _ => Answer::Done,
        });
        queue.push(key("a"));
        at_ms(reconciler.start, 1_000).await;
        queue.push(key("a"));
        at_ms(reconciler.start, 2_000).await;
        assert_eq!(reconciler.times("a"), [0, 100, 300, 1_000, 1_100]);
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_reconciles_again_after_the_delay() {
        let (reconciler, queue, _down) = start(|_, _| Answer::After(Duration::from_secs(5)));
        queue.push(key("a"));
        at_ms(reconciler.start, 12_000).await;
        assert_eq!(reconciler.times("a"), [0, 5_000, 10_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_changed_while_reconciling_is_reconciled_again_once() {
        let (reconciler, queue, _down) = start(|_, nth| match nth {
            0 => Answer::Take(Duration::from_secs(1)),
            _ => Answer::Done,
        });
        queue.push(key("a"));
        for ms in [500, 600, 700] {
            at_ms(reconciler.start, ms).await;
            queue.push(key("a"));
        }
        at_ms(reconciler.start, 5_000).await;
        assert_eq!(
            reconciler.times("a"),
            [0, 1_000],
            "the changes made during the first reconcile are seen by a second, one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_during_a_retry_wait_leaves_one_retry_schedule() {
        let (reconciler, queue, _down) = start(|_, _| Answer::Fail);
        queue.push(key("a"));
        at_ms(reconciler.start, 50).await;
        queue.push(key("a"));
        at_ms(reconciler.start, 4_000).await;
        // The change is reconciled at once; its failure's backoff replaces the
        // one pending, rather than starting a second chain of retries beside it.
        assert_eq!(reconciler.times("a"), [0, 50, 250, 650, 1_450, 3_050]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_key_does_not_hold_back_another() {
        let (reconciler, queue, _down) = start(|key, _| match key.name.as_str() {
            "failing" => Answer::Fail,
            _ => Answer::Done,
        });
        queue.push(key("failing"));
        queue.push(key("fine"));
        at_ms(reconciler.start, 200).await;
        queue.push(key("fine"));
        at_ms(reconciler.start, 1_000).await;
        assert_eq!(reconciler.times("fine"), [0, 200]);
        assert_eq!(reconciler.times("failing"), [0, 100, 300, 700]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_loop_and_its_retries() {
        let (reconciler, queue, down) = start(|_, _| Answer::Fail);
        queue.push(key("a"));
        at_ms(reconciler.start, 150).await;
        down.send_replace(true);
        queue.push(key("b"));
        at_ms(reconciler.start, 10_000).await;
        assert_eq!(reconciler.times("a"), [0, 100]);
        assert!(reconciler.times("b").is_empty());
    }
}
