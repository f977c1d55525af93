//! `Context`: what every running operation and every request's decision shares —
//! the store, the settings, metrics, shutdown, which records have a runner, the
//! per-namespace locks, and the announcement of operations ending.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedMutexGuard, broadcast};

use super::runners::Runners;
use super::settings::ProvisionerSettings;
use crate::locks;
use crate::resources::OperationState;
use crate::shutdown::Shutdown;
use crate::store::TypedStore;
use crate::telemetry::Metrics;

/// How many ended operations are announced ahead of the slowest listener; one that
/// falls further behind reads the record instead.
const ANNOUNCEMENTS_BUFFERED: usize = 256;

pub struct Context {
    store: TypedStore,
    settings: ProvisionerSettings,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    /// While this replica leads: its term's shutdown (operations run only
    /// here then). None while following.
    term: Mutex<Option<Shutdown>>,
    runners: Runners,
    /// Serialises the namespace-wide steps (label, Broker, clean-up) per namespace.
    namespace_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Announces (operation id, final state) as operations end.
    finished: broadcast::Sender<(String, OperationState)>,
}

impl Context {
    /// Settings for unit tests: the integration namespace `kyma-integration`,
    /// a minute's operation timeout.
    #[cfg(test)]
    pub fn for_tests(store: TypedStore, shutdown: Shutdown) -> Arc<Self> {
        Arc::new(Self::new(
            store,
            ProvisionerSettings {
                integration_namespace: "kyma-integration".into(),
                operation_timeout: std::time::Duration::from_secs(60),
                deprovisioned_retention: std::time::Duration::from_secs(60),
                mesh_served_by: "meshbroker",
            },
            Metrics::new(),
            shutdown,
        ))
    }

    pub fn new(
        store: TypedStore,
        settings: ProvisionerSettings,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            store,
            settings,
            metrics,
            shutdown,
            term: Mutex::new(None),
            runners: Runners::default(),
            namespace_locks: Mutex::new(HashMap::new()),
            finished: broadcast::channel(ANNOUNCEMENTS_BUFFERED).0,
        }
    }

    pub fn store(&self) -> &TypedStore {
        &self.store
    }

    pub fn settings(&self) -> &ProvisionerSettings {
        &self.settings
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The leadership term operations run in now, if this replica leads.
    pub fn term(&self) -> Option<Shutdown> {
        locks::lock(&self.term)
            .clone()
            .filter(|term| !term.is_down())
    }

    pub fn set_term(&self, term: Shutdown) {
        *locks::lock(&self.term) = Some(term);
    }

    pub fn runners(&self) -> &Runners {
        &self.runners
    }

    /// Holds `namespace` for namespace-wide steps until the guard is dropped.
    pub async fn lock_namespace(&self, namespace: &str) -> OwnedMutexGuard<()> {
        let lock = locks::lock(&self.namespace_locks)
            .entry(namespace.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Tells those waiting for `operation` that it ended in `state`.
    pub fn announce_finished(&self, operation: &str, state: OperationState) {
        // No listeners is fine: nobody is waiting synchronously.
        let _ = self.finished.send((operation.to_string(), state));
    }

    /// Operations ending from now on, as (operation id, final state).
    pub fn subscribe_finished(&self) -> broadcast::Receiver<(String, OperationState)> {
        self.finished.subscribe()
    }
}
