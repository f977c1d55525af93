//! The embedded store against the behaviour every store backend must have:
//! optimistic concurrency, label selectors, namespaces, watch from a revision, and
//! durability across a reopen.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use meshbroker::resources::{Broker, BrokerSpec, labels};
use meshbroker::store::{
    EmbeddedStore, LabelSelector, Store, StoreError, TypedStore, WatchEventType,
};

fn open(dir: &tempfile::TempDir) -> TypedStore {
    let store = EmbeddedStore::open(&dir.path().join("store.db")).expect("store opens");
    TypedStore::new(Arc::new(store) as Arc<dyn Store>)
}

/// Generous, so a loaded machine does not fail a test that waits for an event.
const DEADLINE: Duration = Duration::from_secs(20);

fn namespace(name: &str) -> Namespace {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_string());
    ns
}

fn broker(namespace: &str, name: &str) -> Broker {
    let mut broker = Broker::new(name, BrokerSpec::default());
    broker.metadata.namespace = Some(namespace.to_string());
    broker
}

#[tokio::test]
async fn a_stale_resource_version_is_a_conflict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    store.create(&namespace("team-a")).await.expect("namespace");
    let created = store
        .create(&broker("team-a", "default"))
        .await
        .expect("broker");
    let mut first = created.clone();
    first.spec.delivery = Some(Default::default());
    store.replace(&first).await.expect("first write wins");
    let mut second = created;
    second.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    let error = store.replace(&second).await.expect_err("stale write loses");
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
}

#[tokio::test]
async fn a_delete_on_a_stale_resource_version_is_a_conflict_and_deletes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    store.create(&namespace("team-a")).await.expect("namespace");
    let read = store
        .create(&broker("team-a", "default"))
        .await
        .expect("broker");
    let mut changed = read.clone();
    changed.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    let changed = store.replace(&changed).await.expect("someone else writes");
    let error = store
        .delete_unchanged(&read)
        .await
        .expect_err("what was read is stale");
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    assert!(
        store
            .get::<Broker>(Some("team-a"), "default")
            .await
            .expect("get")
            .is_some(),
        "still there"
    );
    assert!(store.delete_unchanged(&changed).await.expect("current"));
    assert!(
        store
            .get::<Broker>(Some("team-a"), "default")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        !store.delete_unchanged(&changed).await.expect("gone"),
        "deleting what is gone is no error"
    );
}

#[tokio::test]
async fn generation_moves_only_with_the_spec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    store.create(&namespace("team-a")).await.expect("namespace");
    let mut broker = store
        .create(&broker("team-a", "default"))
        .await
        .expect("broker");
    assert_eq!(broker.metadata.generation, Some(1));
    broker.status = Some(Default::default());
    let broker = store.replace(&broker).await.expect("status write");
    assert_eq!(broker.metadata.generation, Some(1));
    let mut changed = broker.clone();
    changed.spec.delivery = Some(Default::default());
    let changed = store.replace(&changed).await.expect("spec write");
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.metadata.uid, broker.metadata.uid);
}

#[tokio::test]
async fn namespaced_objects_need_their_namespace_and_go_with_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let error = store
        .create(&broker("nowhere", "default"))
        .await
        .expect_err("no namespace");
    assert!(
        matches!(error, StoreError::NamespaceNotFound(_)),
        "{error:?}"
    );
    store.create(&namespace("team-a")).await.expect("namespace");
    store
        .create(&broker("team-a", "default"))
        .await
        .expect("broker");
    assert!(
        store
            .delete::<Namespace>(None, "team-a")
            .await
            .expect("delete")
    );
    assert!(
        store
            .get::<Broker>(Some("team-a"), "default")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn label_selectors_narrow_lists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let mut labelled = namespace("mesh");
    labelled.metadata.labels =
        Some([(labels::INJECTION.to_string(), "enabled".to_string())].into());
    store.create(&labelled).await.expect("labelled");
    store.create(&namespace("plain")).await.expect("plain");
    let selector = LabelSelector::parse("knative-eventing-injection=enabled").expect("selector");
    let found: Vec<Namespace> = store.list(None, &selector).await.expect("list");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].metadata.name.as_deref(), Some("mesh"));
}

#[tokio::test]
async fn a_watch_from_a_revision_misses_nothing_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    store.create(&namespace("team-a")).await.expect("namespace");
    let kind = meshbroker::resources::kind_of::<Broker>();
    let listed = store
        .raw()
        .list(kind, None, &LabelSelector::everything())
        .await
        .expect("list");
    store.create(&broker("team-a", "one")).await.expect("one");
    let mut watch = store
        .raw()
        .watch(
            kind,
            None,
            &LabelSelector::everything(),
            Some(&listed.resource_version),
        )
        .await
        .expect("watch");
    store.create(&broker("team-a", "two")).await.expect("two");
    store
        .delete::<Broker>(Some("team-a"), "one")
        .await
        .expect("delete");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(DEADLINE, watch.next())
            .await
            .expect("event arrives in time")
            .expect("stream open")
            .expect("no error");
        seen.push((event.type_, event.object.metadata.name.unwrap_or_default()));
    }
    assert_eq!(
        seen,
        vec![
            (WatchEventType::Added, "one".to_string()),
            (WatchEventType::Added, "two".to_string()),
            (WatchEventType::Deleted, "one".to_string()),
        ]
    );
}

#[tokio::test]
async fn objects_and_revisions_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let revision = {
        let store = open(&dir);
        store.create(&namespace("team-a")).await.expect("namespace");
        let created = store
            .create(&broker("team-a", "default"))
            .await
            .expect("broker");
        created.metadata.resource_version.expect("revision")
    };
    let store = open(&dir);
    let found: Broker = store
        .get(Some("team-a"), "default")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(
        found.metadata.resource_version.as_deref(),
        Some(revision.as_str())
    );
    let next = store
        .create(&broker("team-a", "other"))
        .await
        .expect("create after reopen");
    let next: u64 = next
        .metadata
        .resource_version
        .expect("rv")
        .parse()
        .expect("number");
    assert!(
        next > revision.parse::<u64>().expect("number"),
        "revisions keep growing"
    );
}

#[tokio::test]
async fn a_namespace_carries_its_name_label_as_on_an_api_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let created = store.create(&namespace("team-a")).await.expect("namespace");
    let label = |ns: &Namespace| {
        ns.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/metadata.name").cloned())
    };
    assert_eq!(label(&created).as_deref(), Some("team-a"));
    let mut replaced = created;
    replaced.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    let replaced = store.replace(&replaced).await.expect("replace");
    assert_eq!(
        label(&replaced).as_deref(),
        Some("team-a"),
        "kept on every write"
    );
    assert_eq!(
        replaced
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("a")
    );
}

#[tokio::test]
async fn namespaces_an_older_version_stored_are_completed_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let mut versions = Vec::new();
    {
        let store = open(&dir);
        for name in ["bare", "labelled", "empty", "current"] {
            let created = store.create(&namespace(name)).await.expect("namespace");
            versions.push(created.metadata.resource_version);
        }
        store
            .create(&broker("current", "default"))
            .await
            .expect("broker");
    }
    // As an older meshbroker wrote them: no status, no name label.
    let conn = rusqlite::Connection::open(&path).expect("opens");
    conn.execute(
        r#"UPDATE objects SET body = json_remove(body, '$.status', '$.metadata.labels')
            WHERE name = 'bare'"#,
        [],
    )
    .expect("made old");
    conn.execute(
        r#"UPDATE objects SET body = json_set(json_remove(body, '$.status'),
                                  '$.metadata.labels', json_object('team', 'a'))
            WHERE name = 'labelled'"#,
        [],
    )
    .expect("made old");
    conn.execute(
        r#"UPDATE objects SET body = json_set(body, '$.status', json('{}'),
                                  '$.metadata.labels', json('null'))
            WHERE name = 'empty'"#,
        [],
    )
    .expect("made old");
    let broker_before: String = conn
        .query_row(
            "SELECT body FROM objects WHERE kind != (SELECT kind FROM objects WHERE name = 'bare')",
            [],
            |row| row.get(0),
        )
        .expect("the Broker's body");
    drop(conn);

    let store =
        TypedStore::new(Arc::new(EmbeddedStore::open(&path).expect("reopens")) as Arc<dyn Store>);
    for (name, version) in ["bare", "labelled", "empty", "current"]
        .iter()
        .zip(&versions)
    {
        let name = *name;
        let read: Namespace = store
            .get(None, name)
            .await
            .expect("read")
            .expect("namespace");
        let value = serde_json::to_value(&read).expect("serialises");
        assert_eq!(value["status"]["phase"], "Active", "{name}: {value}");
        assert_eq!(
            value["metadata"]["labels"]["kubernetes.io/metadata.name"], name,
            "{name}: {value}"
        );
        assert_eq!(
            &read.metadata.resource_version, version,
            "{name}: completed, not changed"
        );
    }
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let broker_after: String = conn
        .query_row(
            "SELECT body FROM objects WHERE kind != (SELECT kind FROM objects WHERE name = 'bare')",
            [],
            |row| row.get(0),
        )
        .expect("the Broker's body");
    assert_eq!(broker_after, broker_before, "other kinds untouched");
    let labelled: Namespace = store
        .get(None, "labelled")
        .await
        .expect("read")
        .expect("namespace");
    assert_eq!(
        labelled
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("a"),
        "its own labels kept"
    );
}

#[tokio::test]
async fn what_a_namespace_holds_is_kept_with_every_write_and_counted_again_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let usage = async |store: &TypedStore, namespace: &str| {
        store
            .raw()
            .namespace_usage(namespace)
            .await
            .expect("usage")
            .expect("the embedded store counts")
    };
    let (objects, bytes) = {
        let store = open(&dir);
        store.create(&namespace("team-a")).await.expect("namespace");
        store.create(&namespace("team-b")).await.expect("namespace");
        assert_eq!(usage(&store, "team-a").await.objects, 0);
        let first = store.create(&broker("team-a", "one")).await.expect("one");
        store.create(&broker("team-a", "two")).await.expect("two");
        store
            .create(&broker("team-b", "other"))
            .await
            .expect("other");
        let held = usage(&store, "team-a").await;
        assert_eq!(held.objects, 2);
        let mut grown = first;
        grown.metadata.labels = Some([("a".to_string(), "x".repeat(1000))].into());
        store.replace(&grown).await.expect("grows");
        let after = usage(&store, "team-a").await;
        assert_eq!(after.objects, 2, "a replace adds no object");
        assert!(after.bytes >= held.bytes + 1000, "{after:?} after {held:?}");
        store
            .delete::<Broker>(Some("team-a"), "two")
            .await
            .expect("deletes");
        let left = usage(&store, "team-a").await;
        assert_eq!(left.objects, 1);
        (left.objects, left.bytes)
    };
    let store = open(&dir);
    let counted = usage(&store, "team-a").await;
    assert_eq!(
        (counted.objects, counted.bytes),
        (objects, bytes),
        "counted from the file"
    );
    store
        .delete::<Namespace>(None, "team-a")
        .await
        .expect("deletes the namespace");
    assert_eq!(usage(&store, "team-a").await.objects, 0, "with all it held");
    assert_eq!(usage(&store, "team-b").await.objects, 1);
}
