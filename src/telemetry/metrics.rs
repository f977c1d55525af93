//! Prometheus metrics, exposed at `/metrics` in the text format.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::log_report::{LogReportCollector, Reporter};

/// Every label is borrowed or shared, so counting a request allocates nothing: the
/// events listener counts every one of its tens of thousands of requests a second.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    route: Route,
    method: &'static str,
    status: u16,
}

/// A request's route template (`/{application}/events`), or `unmatched` when no
/// route took it. Never the raw path: callers could create unbounded label values.
/// Holds axum's shared copy of the template (a reference count, not a new String).
#[derive(Clone, Debug)]
struct Route(Option<MatchedPath>);

impl Route {
    /// Templates start with `/`, so no route can be mistaken for this one.
    const UNMATCHED: &'static str = "unmatched";

    fn as_str(&self) -> &str {
        self.0.as_ref().map_or(Self::UNMATCHED, MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    outcome: &'static str,
}

/// Why a Trigger's filter could not be decided: the name of the CESQL limit it
/// went over (a fixed, small set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilterErrorLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CutLabels {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: &'static str,
    state: &'static str,
}

/// How a delivery ended, as `meshbroker_events_total` counts it.
#[derive(Clone, Copy, Debug)]
pub enum DeliveryOutcome {
    /// The subscriber answered 2xx.
    Delivered,
    /// The subscriber refused or failed for good; the dead-letter sink took it.
    DeadLettered,
    /// Neither the subscriber nor a dead-letter sink took it.
    Undeliverable,
}

/// Loopback deliveries take well under a millisecond; an attempt may take up to
/// its timeout (30 s by default), and retries with backoff add minutes.
const DELIVERY_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 120.0,
];

fn delivery_histogram() -> Histogram {
    Histogram::new(DELIVERY_BUCKETS)
}

/// `meshbroker_delivery_duration_seconds{outcome}`: from the moment a delivery
/// worker takes an event off its subscriber's queue (or, for an event that found
/// the queue full, from the moment it is sent to the dead-letter sink) until its
/// fate is known, retries, backoff and the dead-letter sink included; labelled
/// with that fate.
///
/// Why the whole delivery, not one attempt: it is what a subscriber's owner asks
/// ("how long until my event landed, or was given up on?"), and it is Knative's
/// convention: its Broker's `event_dispatch_latencies` times the send including
/// retries and labels it with the final response. Why outcome, not response code:
/// the three fates line up with `meshbroker_events_total{outcome}` and keep the
/// label set fixed; retries are counted there (`retried`). The time an event
/// waited in its queue is not in here.
struct DeliveryDurations {
    delivered: Histogram,
    dead_lettered: Histogram,
    undeliverable: Histogram,
}

impl DeliveryDurations {
    fn from(family: &Family<EventLabels, Histogram, fn() -> Histogram>) -> Self {
        let histogram = |outcome| family.get_or_create(&EventLabels { outcome }).clone();
        Self {
            delivered: histogram("delivered"),
            dead_lettered: histogram("dead_lettered"),
            undeliverable: histogram("undeliverable"),
        }
    }
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

/// An fsync of the event log takes a fraction of a millisecond on a local
/// SSD and can take a second on a busy network disk.
const FSYNC_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

pub struct Metrics {
    registry: Registry,
    log_report: LogReportCollector,
    events: EventCounters,
    log_fsyncs: Histogram,
    log_appended: Counter,
    delivery_durations: DeliveryDurations,
    requests: Family<RequestLabels, Counter>,
    connections: Family<ListenerLabels, Gauge>,
    connections_cut: Family<CutLabels, Counter>,
    filter_errors: Family<FilterErrorLabels, Counter>,
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
        let connections = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "http_connections",
            "Connections open now, by listener",
            connections.clone(),
        );
        let connections_cut = Family::<CutLabels, Counter>::default();
        registry.register(
            "http_connections_cut",
            "Connections closed because a client was too slow, by listener and reason: header_timeout (headers not whole in time, or idle too long), send_timeout (took nothing of an answer)",
            connections_cut.clone(),
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
        let delivery_durations =
            Family::<EventLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                delivery_histogram,
            );
        registry.register_with_unit(
            "delivery_duration",
            "Time from taking an event for delivery to its final outcome (retries and dead-letter sink included), by outcome: delivered, dead_lettered, undeliverable",
            Unit::Seconds,
            delivery_durations.clone(),
        );
        let filter_errors = Family::<FilterErrorLabels, Counter>::default();
        registry.register(
            "filter_errors",
            "Trigger filters that could not be decided for an event, and so did not match it, by the CESQL limit that stopped them: string_length, work",
            filter_errors.clone(),
        );
        let log_fsyncs = Histogram::new(FSYNC_BUCKETS);
        registry.register_with_unit(
            "event_log_fsync_duration",
            "Time each durable write of the event log took: a commit with --fsync always (one fsync covers every append in it), the periodic sync with --fsync interval",
            Unit::Seconds,
            log_fsyncs.clone(),
        );
        let log_appended = Counter::default();
        registry.register(
            "event_log_appended_events",
            "Events appended to the event log (each Channel's and each Broker's log counts its own)",
            log_appended.clone(),
        );
        let log_report = LogReportCollector::default();
        registry.register_collector(Box::new(log_report.clone()));
        Arc::new(Self {
            registry,
            log_report,
            events: EventCounters::from(&events),
            log_fsyncs,
            log_appended,
            delivery_durations: DeliveryDurations::from(&delivery_durations),
            requests,
            connections,
            connections_cut,
            filter_errors,
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

    /// How long a delivery took, from being taken for delivery to `outcome`.
    pub fn delivery_took(&self, outcome: DeliveryOutcome, took: Duration) {
        let histogram = match outcome {
            DeliveryOutcome::Delivered => &self.delivery_durations.delivered,
            DeliveryOutcome::DeadLettered => &self.delivery_durations.dead_lettered,
            DeliveryOutcome::Undeliverable => &self.delivery_durations.undeliverable,
        };
        histogram.observe(took.as_secs_f64());
    }

    /// Whom to ask for the event log's lag and bytes at each scrape.
    pub fn report_log_with(&self, reporter: Reporter) {
        self.log_report.report_with(reporter);
    }

    /// The event log made `appended` events durable with one fsync.
    pub fn log_synced(&self, took: Duration, appended: usize) {
        self.log_fsyncs.observe(took.as_secs_f64());
        self.log_appended.inc_by(appended as u64);
    }

    /// Events committed without an fsync of their own (`--fsync interval`).
    pub fn log_appended(&self, appended: usize) {
        self.log_appended.inc_by(appended as u64);
    }

    pub fn reply_looped(&self) {
        self.events.reply_looped.inc();
    }

    /// A Trigger's filter went over the CESQL limit named `reason` for one
    /// event, which therefore did not match it.
    pub fn filter_error(&self, reason: &'static str) {
        self.filter_errors
            .get_or_create(&FilterErrorLabels { reason })
            .inc();
    }

    /// The gauge of a listener's open connections, to move as they come and go.
    pub fn connections(&self, listener: &'static str) -> Gauge {
        self.connections
            .get_or_create(&ListenerLabels { listener })
            .clone()
    }

    pub fn connection_cut(&self, listener: &'static str, reason: &'static str) {
        self.connections_cut
            .get_or_create(&CutLabels { listener, reason })
            .inc();
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

/// Counts a request by its route template (not its raw path, which would let
/// callers create unbounded label values), method and status. Called from the
/// listeners' middleware, which runs inside the router (`Router::layer`, not
/// `route_layer`): only then are the fallback's answers (unknown paths,
/// methods) counted too, as `unmatched` or under the route whose method did not fit.
pub fn count_request(
    metrics: &Metrics,
    listener: &'static str,
    route: Option<MatchedPath>,
    method: &Method,
    status: u16,
) {
    metrics
        .requests
        .get_or_create(&RequestLabels {
            listener,
            route: Route(route),
            method: method_label(method),
            status,
        })
        .inc();
}

/// The standard methods by name; any other (callers may invent them) as `other`.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
