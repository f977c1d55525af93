//! Starting the embedded dataplane: the shared HTTP transport, the router, the
//! routing-table follower, and the in-flight counter shutdown drains.

use std::sync::Arc;

use crate::config::{Config, DataplaneKind};
use crate::mesh::dispatch::{DispatchDeps, DispatcherSettings, InFlight};
use crate::mesh::routing::{Builder, DataplaneSettings, LocalDelivery, Router, follow_resources};
use crate::shutdown::Shutdown;
use crate::store::TypedStore;
use crate::telemetry::Metrics;

pub struct Dataplane {
    pub router: Arc<Router>,
    pub in_flight: InFlight,
}

impl Dataplane {
    pub fn start(
        store: TypedStore,
        config: &Config,
        subscriber_tls: Arc<rustls::ClientConfig>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Self {
        let router = Arc::new(Router::new(metrics.clone()));
        let in_flight = InFlight::default();
        let deps = Arc::new(DispatchDeps {
            local: Arc::new(LocalDelivery(Arc::downgrade(&router))),
            subscriber_tls,
            in_flight: in_flight.clone(),
            metrics,
        });
        let settings = DataplaneSettings {
            dispatcher: DispatcherSettings {
                queue_capacity: config.subscriber_queue,
                concurrency: config.subscriber_concurrency,
            },
            namespace_budget: config.namespace_budget,
            knative: config.dataplane == DataplaneKind::Knative,
        };
        let builder = Builder::new(settings, deps, config.integration_namespace.clone());
        follow_resources(store, router.clone(), builder, shutdown);
        Self { router, in_flight }
    }
}
