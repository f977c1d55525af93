//! The Kubernetes backend: the `Store` trait on a real API server through kube-rs
//! (`Api<DynamicObject>` per kind). resourceVersion conflicts, missing objects and
//! namespaces map to the same `StoreError`s as the embedded store, so everything
//! above the seam runs unchanged. Status is written through the `/status`
//! subresource, as the API server requires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams, Preconditions,
    WatchParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::{Client, Error, ResourceExt};

use super::kube_decode::{self, with_types};
use super::{
    LabelSelector, ObjectList, Store, StoreError, WatchEvent, WatchEventType, WatchStream, Write,
};
use crate::locks::lock;
use crate::resources::{Invalid, KindSpec};

#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    /// Kinds found by discovery for `get_other`, and whether they are
    /// namespaced: asked once per kind rather than once per reference.
    discovered: Arc<Mutex<HashMap<GroupVersionKind, (ApiResource, bool)>>>,
}

impl KubeStore {
    /// In-cluster configuration, or the kubeconfig (`KUBECONFIG`, ~/.kube/config).
    pub async fn connect() -> Result<Self, StoreError> {
        let client = Client::try_default()
            .await
            .map_err(|e| StoreError::internal(format!("cannot reach Kubernetes: {e}")))?;
        Ok(Self {
            client,
            discovered: Arc::default(),
        })
    }

    /// The client, for what is not a resource of the store (the leader's Lease).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn api(&self, kind: &KindSpec, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: kind.group.clone(),
            version: kind.version.clone(),
            api_version: kind.api_version(),
            kind: kind.kind.clone(),
            plural: kind.plural.clone(),
        };
        match namespace.filter(|_| kind.namespaced) {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// The resource serving `gvk`, by discovery; an error naming it when the API
    /// server serves no such kind.
    async fn discover(&self, gvk: &GroupVersionKind) -> Result<(ApiResource, bool), StoreError> {
        if let Some(known) = lock(&self.discovered).get(gvk).cloned() {
            return Ok(known);
        }
        let not_served = || {
            StoreError::Invalid(Invalid::new(
                "",
                format!(
                    "the Kubernetes API server serves no {} of {}",
                    gvk.kind,
                    gvk.api_version()
                ),
            ))
        };
        let (resource, capabilities) = match pinned_kind(&self.client, gvk).await {
            Ok(found) => found,
            Err(Error::Discovery(_)) => return Err(not_served()),
            Err(Error::Api(status)) if status.code == 404 => return Err(not_served()),
            Err(error) => return Err(mapped_named(error, &gvk.kind, "", None)),
        };
        let found = (resource, capabilities.scope == Scope::Namespaced);
        lock(&self.discovered).insert(gvk.clone(), found.clone());
        Ok(found)
    }
}

/// Who writes: the field manager the API server records in `managedFields`.
const FIELD_MANAGER: &str = "meshbroker";

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// The API server's answer in the store's terms.
fn mapped(error: Error, kind: &KindSpec, name: &str, namespace: Option<&str>) -> StoreError {
    mapped_named(error, &kind.kind, name, namespace)
}

fn mapped_named(error: Error, kind: &str, name: &str, namespace: Option<&str>) -> StoreError {
    let Error::Api(status) = error else {
        return StoreError::internal(error);
    };
    let named = || (kind.to_string(), name.to_string());
    match status.code {
        404 if status.message.contains("namespaces") && kind != "Namespace" => {
            StoreError::NamespaceNotFound(namespace.unwrap_or_default().to_string())
        }
        404 => StoreError::NotFound {
            kind: named().0,
            name: named().1,
        },
        409 if status.reason == "AlreadyExists" => StoreError::AlreadyExists {
            kind: named().0,
            name: named().1,
        },
        409 => StoreError::Conflict {
            kind: named().0,
            name: named().1,
            given: String::new(),
        },
        // meshbroker's own rights, not the caller's: say which right is missing.
        403 => StoreError::NotPermitted(status.message),
        410 => StoreError::Expired(status.message),
        // "Too large resource version: 12, current: 9", answered as the
        // embedded store answers it.
        504 => too_large(&status.message).unwrap_or_else(|| {
            StoreError::Internal(format!("504 {}: {}", status.reason, status.message))
        }),
        400 | 422 => StoreError::Invalid(Invalid::new("", status.message)),
        _ => StoreError::Internal(format!(
            "{} {}: {}",
            status.code, status.reason, status.message
        )),
    }
}

/// The revisions of the API server's "Too large resource version: ASKED,
/// current: CURRENT".
fn too_large(message: &str) -> Option<StoreError> {
    let rest = message.strip_prefix("Too large resource version: ")?;
    let (asked, current) = rest.split_once(", current: ")?;
    Some(StoreError::TooLarge {
        asked: asked.trim().parse().ok()?,
        current: current.trim().parse().ok()?,
    })
}

fn namespace_of(object: &DynamicObject) -> Option<&str> {
    object.metadata.namespace.as_deref()
}

#[async_trait]
impl Store for KubeStore {
    async fn get(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<DynamicObject, StoreError> {
        let object = self
            .api(kind, namespace)
            .get(name)
            .await
            .map_err(|e| mapped(e, kind, name, namespace))?;
        Ok(with_types(kind, object))
    }

    async fn get_other(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, StoreError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, namespaced) = self.discover(&gvk).await?;
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        };
        api.get_opt(name)
            .await
            .map_err(|e| mapped_named(e, kind, name, Some(namespace)))
    }

    async fn list(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<ObjectList, StoreError> {
        let listed = self.listed(kind, namespace, selector).await?;
        // Whoever lists decides on what is there: not on a list that leaves
        // an object out.
        if !listed.left_out.is_empty() {
            return Err(StoreError::Internal(format!(
                "{} {} cannot be read (nested deeper than meshbroker decodes, or malformed): fix or delete it",
                kind.kind,
                listed.left_out.join(", ")
            )));
        }
        Ok(ObjectList {
            resource_version: listed.resource_version,
            items: listed.items,
        })
    }

    async fn create(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        let object = with_types(kind, object);
        let name = object.name_any();
        let namespace = namespace_of(&object).map(str::to_string);
        let api = self.api(kind, namespace.as_deref());
        let status = object.data.get("status").cloned();
        let created = api
            .create(&post_params(), &object)
            .await
            .map_err(|e| mapped(e, kind, &name, namespace.as_deref()))?;
        // The API server drops status on create; write it through /status.
        self.write_status(kind, &api, created, status, &name, namespace.as_deref())
            .await
    }

    async fn replace(
        &self,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        let object = with_types(kind, object);
        let name = object.name_any();
        let namespace = namespace_of(&object).map(str::to_string);
        let api = self.api(kind, namespace.as_deref());
        let status = object.data.get("status").cloned();
        let given = object.metadata.resource_version.clone().unwrap_or_default();
        let replaced =
            api.replace(&name, &post_params(), &object)
                .await
                .map_err(|e| match mapped(e, kind, &name, namespace.as_deref()) {
                    StoreError::Conflict { kind, name, .. } => {
                        StoreError::Conflict { kind, name, given }
                    }
                    other => other,
                })?;
        self.write_status(kind, &api, replaced, status, &name, namespace.as_deref())
            .await
    }

    async fn delete(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<DynamicObject, StoreError> {
        let existing = self.get(kind, namespace, name).await?;
        // The API server checks the precondition atomically with the delete and
        // answers 409 Conflict when the object has moved on.
        let params = DeleteParams {
            preconditions: resource_version.map(|version| Preconditions {
                resource_version: Some(version.to_string()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        self.api(kind, namespace)
            .delete(name, &params)
            .await
            .map_err(|e| match mapped(e, kind, name, namespace) {
                StoreError::Conflict { kind, name, .. } => StoreError::Conflict {
                    kind,
                    name,
                    given: resource_version.unwrap_or_default().to_string(),
                },
                other => other,
            })?;
        Ok(existing)
    }

    /// The API server's own dry run: its admission and storage checks run, nothing
    /// is persisted. Status would go through `/status` afterwards; here it is
    /// only put into the answer.
    async fn dry_run(
        &self,
        kind: &'static KindSpec,
        write: Write,
    ) -> Result<DynamicObject, StoreError> {
        let params = PostParams {
            dry_run: true,
            ..post_params()
        };
        let (object, replacing) = match write {
            Write::Create(object) => (object, false),
            Write::Replace(object) => (object, true),
            Write::Delete {
                namespace,
                name,
                resource_version,
            } => {
                let namespace = namespace.as_deref();
                let existing = self.get(kind, namespace, &name).await?;
                let params = DeleteParams {
                    dry_run: true,
                    preconditions: resource_version.clone().map(|version| Preconditions {
                        resource_version: Some(version),
                        uid: None,
                    }),
                    ..DeleteParams::default()
                };
                self.api(kind, namespace)
                    .delete(&name, &params)
                    .await
                    .map_err(|e| match mapped(e, kind, &name, namespace) {
                        StoreError::Conflict { kind, name, .. } => StoreError::Conflict {
                            kind,
                            name,
                            given: resource_version.unwrap_or_default(),
                        },
                        other => other,
                    })?;
                return Ok(existing);
            }
        };
        let object = with_types(kind, object);
        let name = object.name_any();
        let namespace = namespace_of(&object).map(str::to_string);
        let api = self.api(kind, namespace.as_deref());
        let status = object.data.get("status").cloned();
        let written = if replacing {
            api.replace(&name, &params, &object).await
        } else {
            api.create(&params, &object).await
        };
        let mut written = with_types(
            kind,
            written.map_err(|e| mapped(e, kind, &name, namespace.as_deref()))?,
        );
        if let Some(status) = status.filter(|_| kind.status_subresource) {
            written.data["status"] = status;
        }
        Ok(written)
    }

    async fn watch(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
        since: Option<&str>,
    ) -> Result<WatchStream, StoreError> {
        let api = self.api(kind, namespace);
        // Without a starting point: every current object as Added, then changes.
        let (initial, since) = match since.filter(|s| !s.is_empty() && *s != "0") {
            Some(since) => (Vec::new(), since.to_string()),
            None => {
                // What follows a kind goes on without what it cannot read.
                let list = self.listed(kind, namespace, selector).await?;
                let added = list.items.into_iter().map(|object| {
                    Ok(WatchEvent {
                        type_: WatchEventType::Added,
                        object,
                    })
                });
                (added.collect(), list.resource_version)
            }
        };
        let params = WatchParams::default()
            .labels(&selector.to_string())
            .timeout(290);
        let changes = kube_decode::watch(&self.client, api.resource_url(), kind, &params, &since)
            .await
            .map_err(|e| mapped(e, kind, "", namespace))?;
        // A watch that ends (server timeout, restart) ends the stream; callers re-list.
        Ok(Box::pin(futures::stream::iter(initial).chain(changes)))
    }
}

impl KubeStore {
    async fn listed(
        &self,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<kube_decode::Listed, StoreError> {
        let params = ListParams::default().labels(&selector.to_string());
        let api = self.api(kind, namespace);
        kube_decode::list(&self.client, api.resource_url(), kind, &params)
            .await
            .map_err(|e| mapped(e, kind, "", namespace))
    }

    /// Writes `status` through the subresource when the kind has one and it
    /// differs from what the server kept.
    async fn write_status(
        &self,
        kind: &'static KindSpec,
        api: &Api<DynamicObject>,
        written: DynamicObject,
        status: Option<serde_json::Value>,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<DynamicObject, StoreError> {
        let written = with_types(kind, written);
        let Some(status) =
            status.filter(|s| kind.status_subresource && Some(s) != written.data.get("status"))
        else {
            return Ok(written);
        };
        let mut with_status = written;
        with_status.data["status"] = status;
        let stored = api
            .replace_status(name, &post_params(), &with_status)
            .await
            .map_err(|e| mapped(e, kind, name, namespace))?;
        Ok(with_types(kind, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_too_large_resource_version_is_read_as_ours() {
        assert!(matches!(
            too_large("Too large resource version: 12, current: 9"),
            Some(StoreError::TooLarge {
                asked: 12,
                current: 9
            })
        ));
        assert!(too_large("Too large resource version: x, current: 9").is_none());
        assert!(too_large("the server was slow").is_none());
    }
}
