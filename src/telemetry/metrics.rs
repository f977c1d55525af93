//! Prometheus metrics, exposed at `/metrics` in the text format.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: &'static str,
    state: &'static str,
}

/// The dataplane's counters, looked up once: they are bumped per event.
struct EventCounters {
    accepted: Counter,
    delivered: Counter,
    retried: Counter,
    dead_lettered: Counter,
    undeliverable: Counter,
    rejected: Counter,
    reply_looped: Counter,
}

impl EventCounters {
    fn from(family: &Family<EventLabels, Counter>) -> Self {
        let counter = |outcome| family.get_or_create(&EventLabels { outcome }).clone();
        Self {
            accepted: counter("accepted"),
            delivered: counter("delivered"),
            retried: counter("retried"),
            dead_lettered: counter("dead_lettered"),
            undeliverable: counter("undeliverable"),
            rejected: counter("rejected"),
            reply_looped: counter("reply_looped"),
        }
    }
}

pub struct Metrics {
    registry: Registry,
    events: EventCounters,
    requests: Family<RequestLabels, Counter>,
    operations_finished: Family<OperationLabels, Counter>,
    operations_running: Family<OperationLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("meshbroker");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by listener, route, method and status",
            requests.clone(),
        );
        let operations_finished = Family::<OperationLabels, Counter>::default();
        registry.register(
            "osb_operations_finished",
            "OSB operations that ended, by kind and final state",
            operations_finished.clone(),
        );
        let operations_running = Family::<OperationLabels, Gauge>::default();
        registry.register(
            "osb_operations_in_progress",
            "OSB operations running now, by kind",
            operations_running.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Dataplane events by outcome: accepted, delivered, retried, dead_lettered, undeliverable, rejected, reply_looped",
            events.clone(),
        );
        Arc::new(Self {
            registry,
            events: EventCounters::from(&events),
            requests,
            operations_finished,
            operations_running,
        })
    }

    pub fn events_accepted(&self, count: usize) {
        self.events.accepted.inc_by(count as u64);
    }

    pub fn event_delivered(&self) {
        self.events.delivered.inc();
    }

    pub fn event_retried(&self) {
        self.events.retried.inc();
    }

    pub fn event_dead_lettered(&self) {
        self.events.dead_lettered.inc();
    }

    /// Out of retries with no dead-letter sink, or the sink failed too.
    pub fn event_undeliverable(&self) {
        self.events.undeliverable.inc();
    }

    /// Refused at ingress (overload): the sender was told to retry.
    pub fn event_rejected(&self) {
        self.events.rejected.inc();
    }

    pub fn reply_looped(&self) {
        self.events.reply_looped.inc();
    }

    pub fn operation_started(&self, kind: &'static str) {
        self.operations_running
            .get_or_create(&OperationLabels {
                kind,
                state: "in progress",
            })
            .inc();
    }

    pub fn operation_finished(&self, kind: &'static str, state: &'static str) {
        self.operations_running
            .get_or_create(&OperationLabels {
                kind,
                state: "in progress",
            })
            .dec();
        self.operations_finished
            .get_or_create(&OperationLabels { kind, state })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts every request by its route template (not its raw path, which would let
/// callers create unbounded label values).
pub async fn track_requests(
    State((metrics, listener)): State<(Arc<Metrics>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_string();
    let response = next.run(request).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            listener,
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
