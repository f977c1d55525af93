//! The Application controller (Kyma's Application Operator, for events): every
//! Application gets a Channel and an HTTPSource named after it in the integration
//! namespace, labelled `application-name`; when the Application goes, so do they
//! (only those meshbroker created).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::ObjectMeta;
use kube::core::object::HasStatus;

use super::runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use super::settings::MeshSettings;
use crate::resources::{
    AccessToken, Application, Channel, ChannelSpec, ConditionStatus, Conditions, HttpSource,
    HttpSourceSpec, kind_of, labels,
};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError, TypedStore};

pub async fn ensure_integration_namespace(
    store: &TypedStore,
    name: &str,
) -> Result<(), StoreError> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(managed_labels(None)),
            ..Default::default()
        },
        ..Default::default()
    };
    store.ensure(&namespace).await.map(|_| ())
}

pub fn managed_labels(application: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(
        labels::MANAGED_BY.to_string(),
        labels::MANAGED_BY_VALUE.to_string(),
    )]);
    if let Some(application) = application {
        labels.insert(
            labels::APPLICATION_NAME.to_string(),
            application.to_string(),
        );
    }
    labels
}

fn is_managed_for(meta: &ObjectMeta, application: &str) -> bool {
    let labels = meta.labels.as_ref();
    let get = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    get(labels::MANAGED_BY) == Some(labels::MANAGED_BY_VALUE)
        && get(labels::APPLICATION_NAME) == Some(application)
}

struct ApplicationController {
    store: TypedStore,
    settings: Arc<MeshSettings>,
}

pub fn start(store: TypedStore, settings: Arc<MeshSettings>, shutdown: Shutdown) {
    let by_application_label = |object: &kube::core::DynamicObject| {
        object
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::APPLICATION_NAME))
            .map(|app| vec![ObjectKey::cluster(app)])
            .unwrap_or_default()
    };
    let sources = vec![
        Source::primary(kind_of::<Application>()),
        Source::mapped(kind_of::<Channel>(), by_application_label),
        Source::mapped(kind_of::<HttpSource>(), by_application_label),
    ];
    let raw = store.raw().clone();
    spawn_controller(
        "applications",
        raw,
        sources,
        Arc::new(ApplicationController { store, settings }),
        shutdown,
    );
}

#[async_trait]
impl Reconciler for ApplicationController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let name = key.name.as_str();
        let namespace = self.settings.integration_namespace.as_str();
        let Some(application) = self.store.get::<Application>(None, name).await? else {
            self.remove_children(name).await?;
            return Ok(Requeue::Done);
        };
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(managed_labels(Some(name))),
            ..Default::default()
        };
        let mut channel = Channel::new(name, ChannelSpec::served());
        channel.metadata = meta(name);
        self.store.ensure(&channel).await?;
        let mut source = HttpSource::new(
            name,
            HttpSourceSpec {
                source: name.to_string(),
            },
        );
        source.metadata = meta(name);
        self.store.ensure(&source).await?;

        let mut status = application.status().cloned().unwrap_or_default();
        status.set_condition(
            "Ready",
            ConditionStatus::True,
            "Installed",
            "Channel and HTTPSource are in place",
        );
        status.events_url = Some(format!("{}/{name}/events", self.settings.events_url));
        status.observed_generation = application.metadata.generation;
        if application.status() != Some(&status) {
            let mut updated = application;
            updated.status = Some(status);
            self.store.replace_status(&updated).await?;
        }
        Ok(Requeue::Done)
    }
}

impl ApplicationController {
    async fn remove_children(&self, application: &str) -> Result<(), StoreError> {
        let namespace = Some(self.settings.integration_namespace.as_str());
        if let Some(channel) = self.store.get::<Channel>(namespace, application).await?
            && is_managed_for(&channel.metadata, application)
        {
            self.store.delete::<Channel>(namespace, application).await?;
            tracing::info!(application, "Application gone: Channel removed");
        }
        if let Some(source) = self.store.get::<HttpSource>(namespace, application).await?
            && is_managed_for(&source.metadata, application)
        {
            self.store
                .delete::<HttpSource>(namespace, application)
                .await?;
        }
        // Its credentials open nothing once it is gone; remove the ones issued for it.
        let selector = LabelSelector::equals(labels::APPLICATION_NAME, application);
        for credential in self.store.list::<AccessToken>(namespace, &selector).await? {
            if is_managed_for(&credential.metadata, application) {
                let name = credential.name_any();
                self.store.delete::<AccessToken>(namespace, &name).await?;
            }
        }
        Ok(())
    }
}
