//! Controllers in the kube-rs mould: each watches some kinds, maps changes to keys,
//! and reconciles one key at a time toward the desired state, idempotently, with
//! failures retried by backoff. They play Kyma's Application Operator (Application →
//! HTTPSource and Channel), Knative's broker injection (labelled namespace → Broker
//! `default`) and the embedded dataplane's status writers (addresses, readiness).

mod applications;
mod injection;
mod readiness;
mod resolve;
mod runtime;

pub use resolve::resolve_destination;
pub use runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};

use std::sync::Arc;

use crate::mesh::routing::Router;
use crate::server::Shutdown;
use crate::store::TypedStore;

/// Where controllers publish addresses and which namespace holds integration objects.
#[derive(Clone)]
pub struct MeshSettings {
    pub integration_namespace: String,
    /// Base URL of the events listener, without a trailing slash.
    pub events_url: String,
    /// The embedded dataplane, when it serves the mesh: status reports Ready only
    /// once it routes the object.
    pub dataplane: Option<Arc<Router>>,
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
    injection::start(store.clone(), shutdown.clone());
    readiness::start(store, settings, shutdown);
    Ok(())
}
