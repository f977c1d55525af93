//! Starting the control plane: the integration namespace first, then every
//! controller on its own task.

use std::sync::Arc;

use super::settings::MeshSettings;
use super::{applications, event_types, injection, readiness, token_requests};
use crate::shutdown::Shutdown;
use crate::store::{StoreError, TypedStore};

/// Starts every control-plane controller.
pub async fn start(
    store: TypedStore,
    settings: MeshSettings,
    shutdown: Shutdown,
) -> Result<(), StoreError> {
    applications::ensure_integration_namespace(&store, &settings.integration_namespace).await?;
    let settings = Arc::new(settings);
    applications::start(store.clone(), settings.clone(), shutdown.clone());
    injection::start(store.clone(), settings.broker_class(), shutdown.clone());
    token_requests::start(store.clone(), settings.clone(), shutdown.clone());
    event_types::start(store.clone(), shutdown.clone());
    readiness::start(store, settings, shutdown);
    Ok(())
}
