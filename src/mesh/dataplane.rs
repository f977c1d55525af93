//! Starting the embedded dataplane: the shared HTTP transport, the router, the
//! routing-table follower, the in-flight counter shutdown drains, and with
//! durable delivery the event log its consumers read (the embedded file, or
//! JetStream).

use std::sync::Arc;

use crate::config::{Config, DataplaneKind, DeliveryKind};
use crate::mesh::dispatch::{BudgetLimits, DispatchDeps, DispatcherSettings, InFlight};
use crate::mesh::jetstream::{Budgets, ConnectError, JetStream, Streams, report};
use crate::mesh::log::{EventLog, LogError, LogSettings};
use crate::mesh::routing::{
    Builder, DataplaneSettings, Durable, Embedded, JetStreamConsumers, LocalDelivery, Router,
    follow_resources,
};
use crate::shutdown::Shutdown;
use crate::store::TypedStore;
use crate::telemetry::Metrics;

pub struct Dataplane {
    pub router: Arc<Router>,
    pub in_flight: InFlight,
    /// Durable delivery's log; None for memory delivery (or Knative's dataplane).
    pub event_log: Option<Arc<EventLog>>,
    /// JetStream delivery's connection.
    pub jetstream: Option<Arc<JetStream>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Nats(#[from] ConnectError),
}

impl Dataplane {
    pub async fn start(
        store: TypedStore,
        config: &Config,
        subscriber_tls: Arc<rustls::ClientConfig>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Result<Self, StartError> {
        let router = Arc::new(Router::new(metrics.clone()));
        let in_flight = InFlight::default();
        let deps = Arc::new(DispatchDeps {
            local: Arc::new(LocalDelivery(Arc::downgrade(&router))),
            subscriber_tls,
            in_flight: in_flight.clone(),
            metrics: metrics.clone(),
            taps: router.taps.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        let knative = config.dataplane == DataplaneKind::Knative;
        let event_log = (config.delivery == DeliveryKind::Durable && !knative)
            .then(|| {
                EventLog::open(
                    &config.data_dir,
                    LogSettings {
                        fsync: config.fsync,
                        namespace_bytes: config.namespace_disk_budget,
                        channel_bytes: config.channel_disk_budget,
                        retention: config.event_retention,
                    },
                    metrics.clone(),
                )
            })
            .transpose()?;
        if let Some(event_log) = &event_log {
            let event_log = Arc::downgrade(event_log);
            metrics.report_log_with(Box::new(move || {
                event_log
                    .upgrade()
                    .map(|log| log.report())
                    .unwrap_or_default()
            }));
        }
        let jetstream = match config.delivery == DeliveryKind::Jetstream && !knative {
            true => Some(Arc::new(JetStream::connect(&config.nats).await?)),
            false => None,
        };
        let settings = DataplaneSettings {
            dispatcher: DispatcherSettings {
                queue_capacity: config.subscriber_queue,
                queue_bytes: config.subscriber_queue_bytes,
                concurrency: config.subscriber_concurrency,
            },
            namespace_budget: match event_log.is_some() || jetstream.is_some() {
                true => BudgetLimits::NONE,
                false => BudgetLimits {
                    events: config.namespace_budget,
                    bytes: config.namespace_budget_bytes,
                },
            },
            knative,
        };
        let mut builder = Builder::new(settings, deps, config.integration_namespace.clone());
        if let Some(event_log) = &event_log {
            let embedded = Embedded::new(
                event_log.clone(),
                router.opening.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            builder = builder.with_durable(Durable::Embedded(embedded));
        }
        if let Some(jetstream) = &jetstream {
            let budgets = Budgets {
                namespace_bytes: config.namespace_disk_budget,
                channel_bytes: config.channel_disk_budget,
            };
            let streams = Streams::new(jetstream.clone(), budgets);
            let consumers = JetStreamConsumers::new(
                streams.clone(),
                router.opening.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            let latest = report::start(streams, consumers.owners(), shutdown.clone());
            metrics.report_log_with(Box::new(move || (**latest.load()).clone()));
            builder = builder.with_durable(Durable::JetStream(consumers));
        }
        follow_resources(store, router.clone(), builder, shutdown);
        Ok(Self {
            router,
            in_flight,
            event_log,
            jetstream,
        })
    }
}
