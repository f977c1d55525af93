//! The `Store` trait every backend implements, and the list and watch types.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use kube::core::DynamicObject;
use serde::Serialize;

use super::{LabelSelector, StoreError};
use crate::resources::{Invalid, KindSpec, Usage};

/// A list and the store revision it was read at; watch from there to miss nothing.
#[derive(Debug, Clone)]
pub struct ObjectList {
    pub items: Vec<DynamicObject>,
    pub resource_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub type_: WatchEventType,
    pub object: DynamicObject,
}

/// A write as `Store::dry_run` rehearses it: the arguments of `create`,
/// `replace` or `delete`.
#[derive(Debug, Clone)]
pub enum Write {
    Create(DynamicObject),
    Replace(DynamicObject),
    Delete {
        namespace: Option<String>,
        name: String,
        resource_version: Option<String>,
    },
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// A store of Kubernetes-shaped objects. Writes check `metadata.resourceVersion`
/// when it is set (a stale one is a `Conflict`); the store assigns uid,
/// creationTimestamp, generation and resourceVersion.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<DynamicObject, StoreError>;

    /// Objects of a kind, in one namespace or (None) all of them.
    async fn list(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<ObjectList, StoreError>;

    async fn create(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError>;

    /// Replaces an existing object whole, status included.
    async fn replace(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError>;

    /// Deletes an object; deleting a Namespace deletes everything in it. With
    /// `resource_version`, only while the object is still at that version (else a
    /// `Conflict`, and nothing is deleted): a decision taken on what was read holds.
    async fn delete(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<DynamicObject, StoreError>;

    /// Checks `write` as `create`, `replace` or `delete` would (namespace,
    /// existence, resourceVersion) and answers what that call would answer,
    /// storing nothing and so waking no watcher: a `dryRun`. A dry-run create
    /// has no resourceVersion yet, as on a Kubernetes API server.
    async fn dry_run(
        &self,
        kind: &'static KindSpec,
        write: Write,
    ) -> Result<DynamicObject, StoreError>;

    /// An object of a kind meshbroker does not serve, read to resolve a reference
    /// to it (Knative's Addressable duck type: any kind with `status.address.url`,
    /// such as a Knative Service); None when there is no such object. Only a
    /// store backed by a Kubernetes API server holds objects of other kinds.
    async fn get_other(
        &self,
        api_version: &str,
        kind: &str,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<DynamicObject>, StoreError> {
        Err(StoreError::Invalid(Invalid::new(
            "",
            format!(
                "the embedded store holds no {kind} of {api_version}: references to kinds meshbroker does not serve resolve with --store kube"
            ),
        )))
    }

    /// What `namespace` holds, where the store counts it (the embedded
    /// store); None where something else bounds namespaces (a Kubernetes API
    /// server, with its ResourceQuotas).
    async fn namespace_usage(&self, _namespace: &str) -> Result<Option<Usage>, StoreError> {
        Ok(None)
    }

    /// Changes after `since`; with no `since`, every current object as `Added` first.
    async fn watch(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
        since: Option<&str>,
    ) -> Result<WatchStream, StoreError>;
}
