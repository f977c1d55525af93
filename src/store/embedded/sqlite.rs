//! `EmbeddedStore`: the `Store` trait on one SQLite database. Every call takes the
//! one connection under a mutex on a blocking thread; control-plane traffic is
//! small, and the dataplane never reads the store.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::core::{DynamicObject, TypeMeta};
use rusqlite::{Connection, OptionalExtension, params};
use tokio_stream::wrappers::BroadcastStream;

use super::changes::{Change, ChangeLog};
use crate::files::private_database;
use crate::ids::random_uuid;
use crate::locks;
use crate::resources::{Invalid, KindSpec, Usage, namespace_kind};
use crate::store::{
    LabelSelector, ObjectList, Store, StoreError, WatchEvent, WatchEventType, WatchStream, Write,
};

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    conn: Connection,
    revision: u64,
    changes: ChangeLog,
    /// What each namespace holds, kept with every commit (counted once at open).
    usage: HashMap<String, Usage>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS objects (
        kind      TEXT    NOT NULL,
        namespace TEXT    NOT NULL,
        name      TEXT    NOT NULL,
        revision  INTEGER NOT NULL,
        body      TEXT    NOT NULL,
        PRIMARY KEY (kind, namespace, name)
    );
    CREATE TABLE IF NOT EXISTS revision (
        id    INTEGER PRIMARY KEY CHECK (id = 0),
        value INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO revision (id, value) VALUES (0, 0);
";

/// The store holds token digests, instance parameters and every resource: only
/// meshbroker's user may read it.
fn private_file(path: &Path) -> Result<(), StoreError> {
    private_database(path).map_err(|e| StoreError::Internal(format!("{}: {e}", path.display())))
}

/// Since 1.21 the API server labels every Namespace with its own name (and
/// keeps the label on every write); the embedded store does the same, so a
/// client cannot tell the two apart by it.
fn name_label(kind: &KindSpec, object: &mut DynamicObject) {
    if !std::ptr::eq(kind, crate::resources::namespace_kind()) {
        return;
    }
    let name = object.name_any();
    object
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(NAMESPACE_NAME_LABEL.to_string(), name);
}

const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespaces an older meshbroker stored lack what a Kubernetes API server
/// always shows and this store writes on create: `status.phase` and the name
/// label. Added at open, in place and at no new revision: the Namespace did
/// not change, only how completely it was written down.
const COMPLETE_NAMESPACES: [&str; 4] = [
    r#"UPDATE objects SET body = json_set(body, '$.status.phase', 'Active')
        WHERE kind = ?1 AND json_valid(body) AND json_type(body, '$.status') = 'object'
          AND json_type(body, '$.status.phase') IS NULL"#,
    r#"UPDATE objects SET body = json_set(body, '$.status', json_object('phase', 'Active'))
        WHERE kind = ?1 AND json_valid(body) AND coalesce(json_type(body, '$.status'), 'null') = 'null'"#,
    r#"UPDATE objects
          SET body = json_set(body, '$.metadata.labels."kubernetes.io/metadata.name"', name)
        WHERE kind = ?1 AND json_valid(body) AND json_type(body, '$.metadata.labels') = 'object'
          AND json_type(body, '$.metadata.labels."kubernetes.io/metadata.name"') IS NULL"#,
    r#"UPDATE objects
          SET body = json_set(body, '$.metadata.labels',
                              json_object('kubernetes.io/metadata.name', name))
        WHERE kind = ?1 AND json_valid(body) AND coalesce(json_type(body, '$.metadata.labels'), 'null') = 'null'"#,
];

fn complete_namespaces(conn: &Connection) -> Result<(), StoreError> {
    let kind = crate::resources::namespace_kind().storage_key();
    for statement in COMPLETE_NAMESPACES {
        conn.execute(statement, params![kind])?;
    }
    Ok(())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        private_file(path)?;
        let conn = Connection::open(path)?;
        // WAL for concurrent readers of the file; FULL so an acknowledged write
        // survives power loss, not only a crash of the process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        complete_namespaces(&conn)?;
        let revision: i64 =
            conn.query_row("SELECT value FROM revision WHERE id = 0", [], |r| r.get(0))?;
        let usage = namespace_usage(&conn)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                conn,
                revision: u64::try_from(revision).unwrap_or_default(),
                changes: ChangeLog::new(),
                usage,
            })),
        })
    }

    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&mut locks::lock(&inner)))
            .await
            .map_err(StoreError::internal)?
    }
}

/// What each namespace holds, counted from the file.
fn namespace_usage(conn: &Connection) -> Result<HashMap<String, Usage>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT namespace, COUNT(*), SUM(octet_length(body)) FROM objects
         WHERE namespace != '' GROUP BY namespace",
    )?;
    let rows = statement.query_map([], |row| {
        let count = |i| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
        Ok((
            row.get::<_, String>(0)?,
            Usage {
                objects: count(1)?,
                bytes: count(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A write waiting for `Inner::commit`: kind key, namespace key, what
/// happens, the object, and for a modification that changed the labels the
/// object it replaces (see `Change::previous`).
type Pending = (
    String,
    String,
    WatchEventType,
    DynamicObject,
    Option<DynamicObject>,
);

fn ns_key(kind: &KindSpec, namespace: Option<&str>) -> String {
    if kind.namespaced {
        namespace.unwrap_or_default().to_string()
    } else {
        String::new()
    }
}

fn not_found(kind: &KindSpec, name: &str) -> StoreError {
    StoreError::NotFound {
        kind: kind.kind.clone(),
        name: name.to_string(),
    }
}

fn decode(body: &str) -> Result<DynamicObject, StoreError> {
    serde_json::from_str(body).map_err(StoreError::internal)
}

fn encode(object: &DynamicObject) -> Result<String, StoreError> {
    serde_json::to_string(object).map_err(StoreError::internal)
}

impl Inner {
    fn load(
        &self,
        kind: &KindSpec,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, StoreError> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                params![kind.storage_key(), namespace, name],
                |r| r.get(0),
            )
            .optional()?;
        body.as_deref().map(decode).transpose()
    }

    fn namespace_exists(&self, namespace: &str) -> Result<bool, StoreError> {
        Ok(self.load(namespace_kind(), "", namespace)?.is_some())
    }

    /// Writes (or deletes) within one transaction and publishes the changes in order.
    fn commit(&mut self, writes: Vec<Pending>) -> Result<(), StoreError> {
        let mut revision = self.revision;
        let mut published = Vec::with_capacity(writes.len());
        let mut usage_changes = Vec::new();
        let tx = self.conn.transaction()?;
        for (kind_key, namespace, type_, mut object, previous) in writes {
            revision += 1;
            object.metadata.resource_version = Some(revision.to_string());
            let name = object.name_any();
            let body = encode(&object)?;
            if !namespace.is_empty() {
                let stored: Option<i64> = tx
                    .prepare_cached(
                        "SELECT octet_length(body) FROM objects
                         WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                    )?
                    .query_row(params![kind_key, namespace, name], |r| r.get(0))
                    .optional()?;
                let written = (type_ != WatchEventType::Deleted).then_some(body.len());
                usage_changes.push((namespace.clone(), stored, written));
            }
            if type_ == WatchEventType::Deleted {
                tx.execute(
                    "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                    params![kind_key, namespace, name],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO objects (kind, namespace, name, revision, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = ?4, body = ?5",
                    params![kind_key, namespace, name, revision as i64, body],
                )?;
            }
            // What the change log holds of it: the object, and the one it
            // replaced when that is kept.
            let replaced = match &previous {
                Some(previous) => encode(previous)?.len(),
                None => 0,
            };
            let bytes = body.len() + replaced;
            published.push(Change {
                revision,
                kind_key,
                namespace,
                type_,
                object,
                previous,
                bytes,
            });
        }
        tx.execute(
            "UPDATE revision SET value = ?1 WHERE id = 0",
            params![revision as i64],
        )?;
        tx.commit()?;
        self.revision = revision;
        for (namespace, stored, written) in usage_changes {
            let usage = self.usage.entry(namespace).or_default();
            let stored = stored.map(|bytes| bytes.max(0) as u64);
            usage.objects = (usage.objects + u64::from(written.is_some()))
                .saturating_sub(u64::from(stored.is_some()));
            usage.bytes =
                (usage.bytes + written.unwrap_or(0) as u64).saturating_sub(stored.unwrap_or(0));
        }
        self.usage.retain(|_, usage| usage.objects > 0);
        self.changes.publish(published);
        Ok(())
    }

    /// A create checked (namespace, name free) and made ready to commit:
    /// its namespace key and the object with the fields the store assigns.
    fn prepare_create(
        &self,
        kind: &KindSpec,
        object: DynamicObject,
    ) -> Result<(String, DynamicObject), StoreError> {
        let mut object = with_types(kind, object);
        let namespace = checked_namespace(kind, &object)?.to_string();
        let name = object.name_any();
        if kind.namespaced && !self.namespace_exists(&namespace)? {
            return Err(StoreError::NamespaceNotFound(namespace));
        }
        if self.load(kind, &namespace, &name)?.is_some() {
            return Err(StoreError::AlreadyExists {
                kind: kind.kind.clone(),
                name,
            });
        }
        name_label(kind, &mut object);
        if std::ptr::eq(kind, crate::resources::namespace_kind()) {
            // As Kubernetes shows one; never Terminating, as deleting is immediate.
            object.data["status"] = serde_json::json!({"phase": "Active"});
        }
        let meta = &mut object.metadata;
        meta.uid = Some(random_uuid());
        meta.creation_timestamp = Some(Time(jiff::Timestamp::now()));
        meta.generation = Some(1);
        meta.deletion_timestamp = None;
        Ok((namespace, object))
    }

    /// A replace checked (exists, resourceVersion current) and made ready to
    /// commit; it carries the stored resourceVersion until the commit sets the next.
    /// A replace checked and made ready to commit: its namespace, the object,
    /// whether it changes anything (a write that changes nothing is not
    /// made, as a Kubernetes API server skips it: no new resourceVersion, no
    /// watch event), and the stored object when the labels change.
    fn prepare_replace(
        &self,
        kind: &KindSpec,
        object: DynamicObject,
    ) -> Result<(String, DynamicObject, bool, Option<DynamicObject>), StoreError> {
        let mut object = with_types(kind, object);
        let namespace = checked_namespace(kind, &object)?.to_string();
        let name = object.name_any();
        let existing = self
            .load(kind, &namespace, &name)?
            .ok_or_else(|| not_found(kind, &name))?;
        if let Some(given) = &object.metadata.resource_version
            && Some(given) != existing.metadata.resource_version.as_ref()
        {
            return Err(StoreError::Conflict {
                kind: kind.kind.clone(),
                name,
                given: given.clone(),
            });
        }
        if object
            .metadata
            .uid
            .as_ref()
            .is_some_and(|uid| Some(uid) != existing.metadata.uid.as_ref())
        {
            return Err(StoreError::Invalid(Invalid::new(
                "metadata.uid",
                "field is immutable",
            )));
        }
        name_label(kind, &mut object);
        let generation = existing.metadata.generation.unwrap_or(1);
        let spec_changed = object.data.get("spec") != existing.data.get("spec");
        let meta = &mut object.metadata;
        meta.uid = existing.metadata.uid.clone();
        meta.creation_timestamp = existing.metadata.creation_timestamp.clone();
        meta.resource_version = existing.metadata.resource_version.clone();
        meta.generation = Some(if spec_changed {
            generation + 1
        } else {
            generation
        });
        let changes = object != existing;
        let relabelled = (object.metadata.labels != existing.metadata.labels).then_some(existing);
        Ok((namespace, object, changes, relabelled))
    }

    /// A delete checked (exists, still at `resource_version` when given): the
    /// object as it is, and the deletions to commit (a Namespace's contents too).
    fn prepare_delete(
        &self,
        kind: &KindSpec,
        namespace: String,
        name: &str,
        resource_version: Option<String>,
    ) -> Result<(DynamicObject, Vec<Pending>), StoreError> {
        let object = self
            .load(kind, &namespace, name)?
            .ok_or_else(|| not_found(kind, name))?;
        if let Some(given) = resource_version
            && Some(&given) != object.metadata.resource_version.as_ref()
        {
            return Err(StoreError::Conflict {
                kind: kind.kind.clone(),
                name: name.to_string(),
                given,
            });
        }
        let mut writes = Vec::new();
        if std::ptr::eq(kind, namespace_kind()) {
            writes = contents_of_namespace(self, name)?;
        }
        writes.push((
            kind.storage_key(),
            namespace,
            WatchEventType::Deleted,
            object.clone(),
            None,
        ));
        Ok((object, writes))
    }

    fn list(
        &self,
        kind: &KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<DynamicObject>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT body FROM objects WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2)
             ORDER BY namespace, name",
        )?;
        let namespace = namespace.filter(|_| kind.namespaced);
        let rows = statement.query_map(params![kind.storage_key(), namespace], |r| {
            r.get::<_, String>(0)
        })?;
        let mut items = Vec::new();
        for body in rows {
            let object = decode(&body?)?;
            if selector.matches(object.metadata.labels.as_ref()) {
                items.push(object);
            }
        }
        Ok(items)
    }
}

fn checked_namespace<'a>(
    kind: &KindSpec,
    object: &'a DynamicObject,
) -> Result<&'a str, StoreError> {
    match (&object.metadata.namespace, kind.namespaced) {
        (Some(ns), true) if !ns.is_empty() => Ok(ns),
        (_, true) => Err(StoreError::Invalid(Invalid::new(
            "metadata.namespace",
            format!("a {} lives in a namespace", kind.kind),
        ))),
        (_, false) => Ok(""),
    }
}

fn with_types(kind: &KindSpec, mut object: DynamicObject) -> DynamicObject {
    object.types = Some(TypeMeta {
        api_version: kind.api_version(),
        kind: kind.kind.clone(),
    });
    if !kind.namespaced {
        object.metadata.namespace = None;
    }
    object
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<DynamicObject, StoreError> {
        let (namespace, name) = (ns_key(kind, namespace), name.to_string());
        self.run(move |inner| {
            inner
                .load(kind, &namespace, &name)?
                .ok_or_else(|| not_found(kind, &name))
        })
        .await
    }

    async fn list(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<ObjectList, StoreError> {
        let (namespace, selector) = (namespace.map(str::to_string), selector.clone());
        self.run(move |inner| {
            Ok(ObjectList {
                items: inner.list(kind, namespace.as_deref(), &selector)?,
                resource_version: inner.revision.to_string(),
            })
        })
        .await
    }

    async fn create(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        self.run(move |inner| {
            let (namespace, object) = inner.prepare_create(kind, object)?;
            let name = object.name_any();
            inner.commit(vec![(
                kind.storage_key(),
                namespace.clone(),
                WatchEventType::Added,
                object,
                None,
            )])?;
            inner
                .load(kind, &namespace, &name)?
                .ok_or_else(|| not_found(kind, &name))
        })
        .await
    }

    async fn replace(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        self.run(move |inner| {
            let (namespace, object, changes, relabelled) = inner.prepare_replace(kind, object)?;
            if !changes {
                return Ok(object);
            }
            let name = object.name_any();
            inner.commit(vec![(
                kind.storage_key(),
                namespace.clone(),
                WatchEventType::Modified,
                object,
                relabelled,
            )])?;
            inner
                .load(kind, &namespace, &name)?
                .ok_or_else(|| not_found(kind, &name))
        })
        .await
    }

    async fn delete(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<DynamicObject, StoreError> {
        let (namespace, name) = (ns_key(kind, namespace), name.to_string());
        let resource_version = resource_version.map(str::to_string);
        self.run(move |inner| {
            let (object, writes) =
                inner.prepare_delete(kind, namespace, &name, resource_version)?;
            inner.commit(writes)?;
            Ok(object)
        })
        .await
    }

    async fn dry_run(
        &self,
        kind: &'static KindSpec,
        write: Write,
    ) -> Result<DynamicObject, StoreError> {
        self.run(move |inner| match write {
            Write::Create(object) => {
                let (_, mut object) = inner.prepare_create(kind, object)?;
                object.metadata.resource_version = None;
                Ok(object)
            }
            Write::Replace(object) => Ok(inner.prepare_replace(kind, object)?.1),
            Write::Delete {
                namespace,
                name,
                resource_version,
            } => {
                let namespace = ns_key(kind, namespace.as_deref());
                Ok(inner
                    .prepare_delete(kind, namespace, &name, resource_version)?
                    .0)
            }
        })
        .await
    }

    async fn namespace_usage(&self, namespace: &str) -> Result<Option<Usage>, StoreError> {
        let namespace = namespace.to_string();
        self.run(move |inner| {
            Ok(Some(
                inner.usage.get(&namespace).copied().unwrap_or_default(),
            ))
        })
        .await
    }

    async fn watch(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
        since: Option<&str>,
    ) -> Result<WatchStream, StoreError> {
        let since = since
            .filter(|s| !s.is_empty() && *s != "0")
            .map(|s| {
                s.parse::<u64>().map_err(|_| {
                    StoreError::Invalid(Invalid::new(
                        "resourceVersion",
                        format!("{s:?} is not a resourceVersion"),
                    ))
                })
            })
            .transpose()?;
        let (namespace, selector_for_start) = (namespace.map(str::to_string), selector.clone());
        let namespace_filter = namespace.clone().filter(|_| kind.namespaced);
        // Snapshot and subscription are taken under one lock: no change falls between.
        let (initial, receiver, reached) = self
            .run(move |inner| match since {
                Some(since) => {
                    let (replay, receiver) = inner.changes.follow_from(since, inner.revision)?;
                    Ok((Initial::Replay(replay), receiver, inner.revision))
                }
                None => {
                    let items = inner.list(kind, namespace.as_deref(), &selector_for_start)?;
                    Ok((
                        Initial::Snapshot(items),
                        inner.changes.subscribe(),
                        inner.revision,
                    ))
                }
            })
            .await?;
        let kind_key = kind.storage_key();
        let selector = selector.clone();
        // As the Kubernetes API server's watch cache answers a selector: what
        // the change means to this watcher, from whether the object matched
        // before and matches after.
        let to_event = move |change: &Change| -> Option<WatchEvent> {
            let here = change.kind_key == kind_key
                && namespace_filter
                    .as_ref()
                    .is_none_or(|ns| *ns == change.namespace);
            if !here {
                return None;
            }
            let matches =
                |object: &DynamicObject| selector.matches(object.metadata.labels.as_ref());
            let before = match change.type_ {
                WatchEventType::Added => None,
                WatchEventType::Deleted => Some(&change.object),
                WatchEventType::Modified => {
                    Some(change.previous.as_ref().unwrap_or(&change.object))
                }
            };
            let matched = before.is_some_and(matches);
            let matches_now = change.type_ != WatchEventType::Deleted && matches(&change.object);
            let (type_, object) = match (matched, matches_now) {
                (false, true) => (WatchEventType::Added, change.object.clone()),
                (true, true) => (WatchEventType::Modified, change.object.clone()),
                (true, false) => {
                    // The object as it last matched, at the change's revision.
                    let mut last = before?.clone();
                    last.metadata.resource_version = Some(change.revision.to_string());
                    (WatchEventType::Deleted, last)
                }
                (false, false) => return None,
            };
            Some(WatchEvent { type_, object })
        };
        let first: Vec<Result<WatchEvent, StoreError>> = match initial {
            Initial::Snapshot(items) => items
                .into_iter()
                .map(|object| {
                    Ok(WatchEvent {
                        type_: WatchEventType::Added,
                        object,
                    })
                })
                .collect(),
            Initial::Replay(changes) => {
                changes.iter().filter_map(|c| to_event(c)).map(Ok).collect()
            }
        };
        let live = BroadcastStream::new(receiver)
            .map(|received| received.ok().and_then(|change| change.upgrade()))
            .scan((false, reached), |(failed, reached), change| {
                // After a lag the stream ends with one error: the watcher must re-list.
                if *failed {
                    return futures::future::ready(None);
                }
                let item = match change {
                    Some(change) => {
                        *reached = change.revision;
                        Ok(change)
                    }
                    // Behind the channel, or the log let the change go
                    // before this watch read it.
                    None => {
                        *failed = true;
                        Err(StoreError::Expired(reached.to_string()))
                    }
                };
                futures::future::ready(Some(item))
            })
            .filter_map(move |item| {
                futures::future::ready(match item {
                    Ok(change) => to_event(&change).map(Ok),
                    Err(error) => Some(Err(error)),
                })
            });
        Ok(Box::pin(futures::stream::iter(first).chain(live)))
    }
}

enum Initial {
    Snapshot(Vec<DynamicObject>),
    Replay(Vec<Arc<Change>>),
}

/// Every object in a namespace, as deletions, for a namespace's cascading delete.
fn contents_of_namespace(inner: &Inner, namespace: &str) -> Result<Vec<Pending>, StoreError> {
    let mut statement = inner
        .conn
        .prepare("SELECT kind, body FROM objects WHERE namespace = ?1 ORDER BY kind, name")?;
    let rows = statement.query_map(params![namespace], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut writes = Vec::new();
    for row in rows {
        let (kind_key, body) = row?;
        writes.push((
            kind_key,
            namespace.to_string(),
            WatchEventType::Deleted,
            decode(&body)?,
            None,
        ));
    }
    Ok(writes)
}
