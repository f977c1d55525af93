//! The state every router (OSB, resource API, ingress) shares: the process's
//! handles behind one `Arc`. The server builds it once.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::mesh::jetstream::JetStream;
use crate::mesh::log::EventLog;
use crate::mesh::routing::Router;
use crate::pki::Authority;
use crate::provisioner::Provisioner;
use crate::shutdown::Shutdown;
use crate::store::{TypedStore, WatchSlots};
use crate::telemetry::Metrics;

/// axum clones the state for every request: one reference count to move
/// rather than one per handle, each a cache line both Tokio workers touch.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

pub struct Handles {
    pub config: Arc<Config>,
    pub store: TypedStore,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub provisioner: Provisioner,
    pub router: Arc<Router>,
    /// JetStream delivery's connection, whose state readiness reports.
    pub jetstream: Option<Arc<JetStream>>,
    /// Durable delivery's event log, whose commits readiness reports.
    pub event_log: Option<Arc<EventLog>>,
    /// The Application Connector; None when the events listener serves no TLS.
    pub connector: Option<Arc<Connector>>,
    /// The resource API's watches open at once.
    pub watch_slots: WatchSlots,
    /// The resource API's lists being sent at once.
    pub list_slots: WatchSlots,
    pub shutdown: Shutdown,
}

/// What the Connector signs with and the address it hands out.
pub struct Connector {
    pub authority: Authority,
    /// The events listener's public base URL, without a trailing slash.
    pub events_url: String,
}
