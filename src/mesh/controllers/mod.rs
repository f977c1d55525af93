//! Controllers in the kube-rs mould: each watches some kinds, maps changes to keys,
//! and reconciles one key at a time toward the desired state, idempotently, with
//! failures retried by backoff. They play Kyma's Application Operator (Application →
//! HTTPSource and Channel), Knative's broker injection (labelled namespace → Broker
//! `default`) and, for the embedded dataplane, Knative's status writers (addresses,
//! readiness).

mod applications;
mod injection;
mod readiness;
mod resolve;
mod runtime;

pub use resolve::resolve_destination;
pub use runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};

use std::sync::Arc;

use crate::mesh::routing::Router;
use crate::resources::labels;
use crate::server::Shutdown;
use crate::store::TypedStore;

/// Where controllers publish addresses and which namespace holds integration objects.
#[derive(Clone)]
pub struct MeshSettings {
    pub integration_namespace: String,
    /// Base URL of the events listener, without a trailing slash.
    pub events_url: String,
    /// The embedded dataplane, when it serves the mesh: status reports Ready only
    /// once it routes the object. None with `--dataplane knative`: Knative serves
    /// Brokers and Channels and writes their status.
    pub dataplane: Option<Arc<Router>>,
}

impl MeshSettings {
    /// The `eventing.knative.dev/broker.class` of the Brokers meshbroker installs.
    fn broker_class(&self) -> &'static str {
        labels::broker_class(self.dataplane.is_some())
    }
}

/// Starts every control-plane controller.
pub async fn start(
    store: TypedStore,
    settings: MeshSettings,
    shutdown: Shutdown,
) -> Result<(), crate::store::StoreError> {
    applications::ensure_integration_namespace(&store, &settings.integration_namespace).await?;
    let settings = Arc::new(settings);
    applications::start(store.clone(), settings.clone(), shutdown.clone());
    injection::start(store.clone(), settings.broker_class(), shutdown.clone());
    readiness::start(store, settings, shutdown);
    Ok(())
}
