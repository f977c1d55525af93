//! The state every handler shares: cheap to clone, all `Arc`s inside.

use std::sync::Arc;

use tokio::sync::watch;

use super::Config;
use crate::auth::Authenticator;
use crate::mesh::routing::Router;
use crate::provisioner::Provisioner;
use crate::store::TypedStore;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: TypedStore,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub provisioner: Provisioner,
    pub router: Arc<Router>,
    pub shutdown: Shutdown,
}

/// Resolves once the server begins shutting down.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        (sender, Self(receiver))
    }

    pub async fn wait(mut self) {
        // Err: the sender is gone, which also means the server is going away.
        let _ = self.0.wait_for(|down| *down).await;
    }

    pub fn is_down(&self) -> bool {
        *self.0.borrow()
    }
}
