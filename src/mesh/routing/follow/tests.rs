//! The follower over an embedded store (real time: the store works on blocking
//! threads, which paused time would not wait for): a write of conditions is
//! routed at once without a build; a spec change and a deletion are built; a
//! watch that ends is listed again.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;

use super::*;
use crate::mesh::dispatch::testing;
use crate::mesh::routing::RoutingTable;
use crate::resources::{BrokerSpec, Condition};
use crate::store::EmbeddedStore;
use crate::telemetry::Metrics;

const NAMESPACE: &str = "team-a";

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn trigger(name: &str, ty: &str) -> Trigger {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"broker": "default", "filter": {"attributes": {"type": ty}},
                 "subscriber": {"uri": "http://sink/"}},
        "status": {"subscriberUri": "http://sink/"}
    }))
    .expect("a Trigger")
}

/// The labels of the Triggers an event of type `ty` reaches.
fn routed(table: &RoutingTable, ty: &str) -> Vec<String> {
    let metrics = Metrics::new();
    let event = testing::event(ty);
    table
        .broker(NAMESPACE, "default")
        .map(|route| {
            route
                .triggers
                .matching(&event.event, &metrics)
                .map(|dispatcher| dispatcher.target().label.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn open(dir: &tempfile::TempDir) -> EmbeddedStore {
    EmbeddedStore::open(&dir.path().join("store.db")).expect("store opens")
}

async fn with_a_broker(store: Arc<dyn Store>) -> TypedStore {
    let store = TypedStore::new(store);
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(NAMESPACE.into());
    store.create(&namespace).await.expect("namespace");
    let mut broker = Broker::new("default", BrokerSpec::default());
    broker.metadata.namespace = Some(NAMESPACE.into());
    store.create(&broker).await.expect("broker");
    store
}

fn follow(store: &TypedStore) -> (Arc<Router>, tokio::sync::watch::Sender<bool>) {
    let builder = Builder::for_tests();
    let router = Arc::new(Router::new(Metrics::new()));
    let (down, shutdown) = Shutdown::new();
    follow_resources(store.clone(), router.clone(), builder, shutdown);
    (router, down)
}

#[tokio::test]
async fn a_write_of_conditions_is_routed_without_a_build_and_a_spec_change_is_built() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = with_a_broker(Arc::new(open(&dir))).await;
    let mut written = store
        .create(&trigger("t", "order.created"))
        .await
        .expect("trigger");
    let (router, _down) = follow(&store);
    eventually("the Trigger is routed", || {
        (routed(&router.table(), "order.created") == ["team-a/t"]).then_some(())
    })
    .await;

    let before = router.table();
    if let Some(status) = written.status.as_mut() {
        status.conditions = vec![Condition::met("Ready")];
    }
    written = store.replace(&written).await.expect("conditions");
    let revision = written.metadata.resource_version.clone();
    eventually("the write of conditions counts as routed", || {
        router.has_routed(revision.as_deref()).then_some(())
    })
    .await;
    assert!(
        Arc::ptr_eq(&before, &router.table()),
        "no table was built for it"
    );

    written.spec.filter = Some(
        serde_json::from_value(serde_json::json!({"attributes": {"type": "order.cancelled"}}))
            .expect("a filter"),
    );
    written = store.replace(&written).await.expect("spec change");
    let revision = written.metadata.resource_version.clone();
    eventually("the spec change is routed", || {
        router.has_routed(revision.as_deref()).then_some(())
    })
    .await;
    let table = router.table();
    assert!(routed(&table, "order.created").is_empty());
    assert_eq!(routed(&table, "order.cancelled"), ["team-a/t"]);

    store
        .delete::<Trigger>(Some(NAMESPACE), "t")
        .await
        .expect("deleted");
    eventually("the deleted Trigger is gone", || {
        routed(&router.table(), "order.cancelled")
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_object_the_table_leaves_out_still_counts_as_routed_at_its_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = with_a_broker(Arc::new(open(&dir))).await;
    let (router, _down) = follow(&store);
    eventually("the first table", || router.is_ready().then_some(())).await;
    // A Trigger whose subscriber is not resolved yet: nothing to route.
    let mut unresolved = trigger("t", "order.created");
    unresolved.status = None;
    let written = store.create(&unresolved).await.expect("trigger");
    let revision = written.metadata.resource_version.clone();
    eventually("its revision counts as routed", || {
        router.has_routed(revision.as_deref()).then_some(())
    })
    .await;
    assert!(routed(&router.table(), "order.created").is_empty());
}

/// An embedded store whose Trigger watches end where a deletion would come,
/// as a watch that fell behind does: the deletion is learnt only by listing
/// again. Counts the Trigger watches opened.
struct LosingDeletions {
    store: EmbeddedStore,
    trigger_watches: AtomicUsize,
}

#[async_trait]
impl Store for LosingDeletions {
    async fn get(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<DynamicObject, StoreError> {
        self.store.get(kind, namespace, name).await
    }

    async fn list(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<crate::store::ObjectList, StoreError> {
        self.store.list(kind, namespace, selector).await
    }

    async fn create(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        self.store.create(kind, object).await
    }

    async fn replace(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        self.store.replace(kind, object).await
    }

    async fn delete(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<DynamicObject, StoreError> {
        self.store
            .delete(kind, namespace, name, resource_version)
            .await
    }

    async fn dry_run(
        &self,
        kind: &'static KindSpec,
        write: crate::store::Write,
    ) -> Result<DynamicObject, StoreError> {
        self.store.dry_run(kind, write).await
    }

    async fn watch(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
        since: Option<&str>,
    ) -> Result<WatchStream, StoreError> {
        let changes = self.store.watch(kind, namespace, selector, since).await?;
        if kind.kind != "Trigger" {
            return Ok(changes);
        }
        self.trigger_watches.fetch_add(1, Ordering::SeqCst);
        Ok(Box::pin(changes.take_while(|change| {
            let deletion = matches!(change, Ok(change) if change.type_ == WatchEventType::Deleted);
            std::future::ready(!deletion)
        })))
    }
}

#[tokio::test]
async fn a_watch_that_ends_is_listed_again_and_what_the_list_lacks_is_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let losing = Arc::new(LosingDeletions {
        store: open(&dir),
        trigger_watches: AtomicUsize::new(0),
    });
    let store = with_a_broker(losing.clone()).await;
    for (name, ty) in [("gone", "order.created"), ("stays", "order.cancelled")] {
        store.create(&trigger(name, ty)).await.expect("trigger");
    }
    let (router, _down) = follow(&store);
    eventually("both Triggers are routed", || {
        let table = router.table();
        (routed(&table, "order.created") == ["team-a/gone"]
            && routed(&table, "order.cancelled") == ["team-a/stays"])
        .then_some(())
    })
    .await;
    assert_eq!(losing.trigger_watches.load(Ordering::SeqCst), 1);

    store
        .delete::<Trigger>(Some(NAMESPACE), "gone")
        .await
        .expect("deleted");
    eventually("the deletion is learnt from a new list", || {
        routed(&router.table(), "order.created")
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(routed(&router.table(), "order.cancelled"), ["team-a/stays"]);
    assert_eq!(
        losing.trigger_watches.load(Ordering::SeqCst),
        2,
        "the Trigger watch was opened again"
    );
}
