//! Broker injection, as Knative's namespace controller did it: a namespace labelled
//! `knative-eventing-injection=enabled` gets Broker `default`, marked as created by
//! meshbroker so that deprovisioning may later remove it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::ObjectMeta;

use super::applications::managed_labels;
use super::runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use crate::resources::{Broker, BrokerSpec, kind_of, labels, namespace_kind};
use crate::shutdown::Shutdown;
use crate::store::{StoreError, TypedStore};

struct BrokerInjection {
    store: TypedStore,
    class: &'static str,
}

pub fn start(store: TypedStore, class: &'static str, shutdown: Shutdown) {
    let sources = vec![
        Source::primary(namespace_kind()),
        Source::mapped(kind_of::<Broker>(), |object| {
            object
                .metadata
                .namespace
                .as_deref()
                .map(|ns| vec![ObjectKey::cluster(ns)])
                .unwrap_or_default()
        }),
    ];
    let raw = store.raw().clone();
    spawn_controller(
        "broker-injection",
        raw,
        sources,
        Arc::new(BrokerInjection { store, class }),
        shutdown,
    );
}

pub fn is_injection_enabled(namespace: &Namespace) -> bool {
    namespace
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::INJECTION))
        .is_some_and(|v| v == labels::INJECTION_ENABLED)
}

/// The Broker meshbroker installs into a mesh namespace.
pub fn default_broker(namespace: &str, class: &str) -> Broker {
    let mut broker = Broker::new(Broker::DEFAULT_NAME, BrokerSpec::default());
    broker.metadata = ObjectMeta {
        name: Some(Broker::DEFAULT_NAME.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(managed_labels(None)),
        annotations: Some(BTreeMap::from([(
            labels::BROKER_CLASS.to_string(),
            class.to_string(),
        )])),
        ..Default::default()
    };
    broker
}

#[async_trait]
impl Reconciler for BrokerInjection {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let Some(namespace) = self.store.get::<Namespace>(None, &key.name).await? else {
            return Ok(Requeue::Done);
        };
        if is_injection_enabled(&namespace) {
            let broker = self
                .store
                .ensure(&default_broker(&key.name, self.class))
                .await?;
            tracing::debug!(namespace = %key.name, broker = ?broker.metadata.name, "mesh namespace has its Broker");
        }
        Ok(Requeue::Done)
    }
}
