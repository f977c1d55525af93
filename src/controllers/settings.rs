//! What the controllers are told at start: where addresses are published, which
//! namespace holds integration objects, and whether the embedded dataplane serves.

use std::sync::Arc;

use crate::mesh::routing::Router;
use crate::resources::labels;

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
    /// How long a TokenRequest's one-time tokens work; None when the
    /// Connector is off (the events listener serves no TLS).
    pub connector_token_ttl: Option<std::time::Duration>,
}

impl MeshSettings {
    /// The `eventing.knative.dev/broker.class` of the Brokers meshbroker installs.
    pub(super) fn broker_class(&self) -> &'static str {
        labels::broker_class(self.dataplane.is_some())
    }
}
