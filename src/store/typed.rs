//! `TypedStore`: the store through Rust types, for controllers and the provisioner.
//! Conversions happen here once; `modify` is the read-change-write loop that retries
//! on a stale resourceVersion.

use std::sync::Arc;

use kube::core::DynamicObject;

use super::{LabelSelector, Store, StoreError};
use crate::resources::{Typed, kind_of};

/// How often `modify` re-reads and retries after losing a write race.
const CONFLICT_RETRIES: usize = 8;

#[derive(Clone)]
pub struct TypedStore {
    store: Arc<dyn Store>,
}

/// A stored object as its Rust type (for what reads the store's watches).
pub fn to_typed<K: Typed>(object: DynamicObject) -> Result<K, StoreError> {
    let value = serde_json::to_value(object).map_err(StoreError::internal)?;
    serde_json::from_value(value).map_err(StoreError::internal)
}

fn to_dynamic<K: Typed>(object: &K) -> Result<DynamicObject, StoreError> {
    let value = serde_json::to_value(object).map_err(StoreError::internal)?;
    serde_json::from_value(value).map_err(StoreError::internal)
}

impl TypedStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub fn raw(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn get<K: Typed>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<K>, StoreError> {
        match self.store.get(kind_of::<K>(), namespace, name).await {
            Ok(object) => Ok(Some(to_typed(object)?)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn list<K: Typed>(
        &self,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<K>, StoreError> {
        let list = self.store.list(kind_of::<K>(), namespace, selector).await?;
        list.items.into_iter().map(to_typed).collect()
    }

    /// A list and the store revision it was read at.
    pub async fn list_with_version<K: Typed>(
        &self,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<(Vec<K>, String), StoreError> {
        let list = self.store.list(kind_of::<K>(), namespace, selector).await?;
        let items = list
            .items
            .into_iter()
            .map(to_typed)
            .collect::<Result<_, _>>()?;
        Ok((items, list.resource_version))
    }

    pub async fn create<K: Typed>(&self, object: &K) -> Result<K, StoreError> {
        to_typed(
            self.store
                .create(kind_of::<K>(), to_dynamic(object)?)
                .await?,
        )
    }

    /// Replaces the object; its resourceVersion, when set, must still be current.
    pub async fn replace<K: Typed>(&self, object: &K) -> Result<K, StoreError> {
        to_typed(
            self.store
                .replace(kind_of::<K>(), to_dynamic(object)?)
                .await?,
        )
    }

    /// Writes `object`'s status onto the object as stored, whose spec (and
    /// any field meshbroker's types do not know) stays as its writer left it:
    /// a controller's status write neither reshapes the spec nor raises its
    /// generation. A Conflict when the object changed since `object` was read.
    pub async fn replace_status<K: Typed>(&self, object: &K) -> Result<K, StoreError> {
        let typed = to_dynamic(object)?;
        let name = typed.metadata.name.clone().unwrap_or_default();
        let mut stored = self
            .store
            .get(kind_of::<K>(), typed.metadata.namespace.as_deref(), &name)
            .await?;
        if stored.metadata.resource_version != typed.metadata.resource_version {
            return Err(StoreError::Conflict {
                kind: kind_of::<K>().kind.clone(),
                name,
                given: typed.metadata.resource_version.unwrap_or_default(),
            });
        }
        if let Some(fields) = stored.data.as_object_mut() {
            match typed.data.get("status") {
                Some(status) => fields.insert("status".into(), status.clone()),
                None => fields.remove("status"),
            };
        }
        to_typed(self.store.replace(kind_of::<K>(), stored).await?)
    }

    /// Deletes; Ok(false) when there was nothing to delete.
    pub async fn delete<K: Typed>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, StoreError> {
        match self
            .store
            .delete(kind_of::<K>(), namespace, name, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Deletes `object` only if nobody changed it since it was read (its
    /// resourceVersion is still current): `Conflict` otherwise, and it stays.
    /// Ok(false) when it is already gone.
    pub async fn delete_unchanged<K: Typed>(&self, object: &K) -> Result<bool, StoreError> {
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        let version = meta
            .resource_version
            .as_deref()
            .ok_or_else(|| StoreError::internal(format!("{name} was not read from the store")))?;
        let deleted = self
            .store
            .delete(
                kind_of::<K>(),
                meta.namespace.as_deref(),
                &name,
                Some(version),
            )
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Creates `desired` unless an object of that name exists; returns what is stored.
    pub async fn ensure<K: Typed>(&self, desired: &K) -> Result<K, StoreError> {
        let meta = desired.meta();
        let name = meta.name.clone().unwrap_or_default();
        let namespace = meta.namespace.clone();
        if let Some(existing) = self.get::<K>(namespace.as_deref(), &name).await? {
            return Ok(existing);
        }
        match self.create(desired).await {
            Err(StoreError::AlreadyExists { .. }) => self
                .get::<K>(namespace.as_deref(), &name)
                .await?
                .ok_or_else(|| {
                    StoreError::internal(format!("{name} vanished while being ensured"))
                }),
            other => other,
        }
    }

    /// Reads, applies `change`, and writes back if `change` says it changed anything;
    /// retries when another writer got in between. None when the object is missing.
    pub async fn modify<K, F>(
        &self,
        namespace: Option<&str>,
        name: &str,
        mut change: F,
    ) -> Result<Option<K>, StoreError>
    where
        K: Typed,
        F: FnMut(&mut K) -> bool + Send,
    {
        let mut last_conflict = None;
        for _ in 0..CONFLICT_RETRIES {
            let Some(mut object) = self.get::<K>(namespace, name).await? else {
                return Ok(None);
            };
            if !change(&mut object) {
                return Ok(Some(object));
            }
            match self.replace(&object).await {
                Err(error @ StoreError::Conflict { .. }) => last_conflict = Some(error),
                Err(error) if error.is_not_found() => return Ok(None),
                other => return other.map(Some),
            }
        }
        Err(last_conflict.unwrap_or_else(|| StoreError::internal("modify gave up")))
    }
}
