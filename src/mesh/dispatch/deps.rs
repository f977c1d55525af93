//! What every dispatcher and every delivery shares: the way to our own Brokers
//! and Channels, the TLS trust for subscribers, the drain counter and metrics.

use std::sync::Arc;

use super::in_flight::InFlight;
use super::local::LocalSink;
use crate::mesh::tap::Taps;
use crate::telemetry::Metrics;

/// What every dispatcher shares.
pub struct DispatchDeps {
    pub local: Arc<dyn LocalSink>,
    /// Whom https:// subscribers, reply destinations and dead-letter sinks are
    /// trusted as; built once.
    pub subscriber_tls: Arc<rustls::ClientConfig>,
    pub in_flight: InFlight,
    pub metrics: Arc<Metrics>,
    /// The Brokers' live tails, which hear how each Trigger's delivery ended.
    pub taps: Arc<Taps>,
    /// Where deliveries run: the dataplane's runtime, also when an event
    /// arrives on the ingress runtime (see `server::ingress_runtime`).
    pub runtime: tokio::runtime::Handle,
}
