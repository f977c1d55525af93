//! What every ingress does first: only POST (OPTIONS answers `Allow`), refuse
//! while not ready or draining, read the body within the limit, and decode the
//! events by content mode.

use axum::body::Body;
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cloudevents::Event;

use std::sync::Arc;

use super::IngressError;
use crate::auth::Caller;
use crate::bodies::{BodyError, read_limited};
use crate::mesh::dispatch::ttl;
use crate::mesh::event::PreparedEvent;
use crate::mesh::event::hop::{self, TraceContext};
use crate::mesh::event::{
    Mode, check_text, mode_of, read_batch, read_binary, read_structured, unsupported_format,
};
use crate::mesh::log::AppendError;
use crate::mesh::routing::Overloaded;
use crate::mesh::routing::{BrokerRoute, ChannelRoute, LogHandle, Origin};
use crate::state::AppState;
use crate::telemetry::Metrics;

/// OPTIONS on any ingress route: what it takes, and, to a sender that asks
/// (`WebHook-Request-Origin`, CloudEvents' HTTP webhook abuse protection,
/// §4), consent for its origin at any rate — senders such as Azure Event Grid
/// deliver only after it. Consent opens nothing: every POST still needs its
/// credentials, and overload is still answered 429.
pub async fn allowed_methods(headers: HeaderMap) -> Response {
    let mut response = (
        StatusCode::NO_CONTENT,
        [(ALLOW, HeaderValue::from_static("POST, OPTIONS"))],
    )
        .into_response();
    if let Some(origin) = headers.get(WEBHOOK_REQUEST_ORIGIN) {
        let answer = response.headers_mut();
        answer.insert(WEBHOOK_ALLOWED_ORIGIN, origin.clone());
        answer.insert(WEBHOOK_ALLOWED_RATE, HeaderValue::from_static("*"));
    }
    response
}

const WEBHOOK_REQUEST_ORIGIN: HeaderName = HeaderName::from_static("webhook-request-origin");
const WEBHOOK_ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");
const WEBHOOK_ALLOWED_RATE: HeaderName = HeaderName::from_static("webhook-allowed-rate");

/// Any other method than POST or OPTIONS, before anything else is looked at.
pub async fn wrong_method() -> IngressError {
    IngressError::MethodNotAllowed
}

/// Who may send through a route without a token.
#[derive(Clone, Copy)]
pub enum Senders {
    /// As `--anonymous-senders` says: the events listener's Brokers and Channels.
    AsConfigured,
    /// Token holders only: the console's copy of a Broker's ingress on the
    /// control listener (`--anonymous-senders` opens the events listener, not
    /// this copy).
    WithToken,
}

/// A Broker's or Channel's sender: the dataplane serves, and the caller's token
/// lets it send into `namespace`. None: a sender without a token, let in by
/// `--anonymous-senders` (never into the integration namespace, whose Channels
/// carry the Applications' events).
pub fn namespace_sender(
    state: &AppState,
    headers: &HeaderMap,
    namespace: &str,
    senders: Senders,
) -> Result<Option<Caller>, IngressError> {
    check_serving(state)?;
    let config = &state.config;
    if matches!(senders, Senders::AsConfigured)
        && config.anonymous_senders
        && !headers.contains_key(AUTHORIZATION)
        && namespace != config.integration_namespace
    {
        return Ok(None);
    }
    let caller = state.auth.bearer(headers)?;
    caller.may_send_into(namespace)?;
    Ok(Some(caller))
}

pub fn check_serving(state: &AppState) -> Result<(), IngressError> {
    if state.shutdown.is_down() {
        return Err(IngressError::Unavailable(
            "the broker is shutting down".into(),
        ));
    }
    if !state.router.is_ready() {
        return Err(IngressError::Unavailable(
            "the routing table is not built yet".into(),
        ));
    }
    Ok(())
}

pub async fn read_body(state: &AppState, body: Body) -> Result<Bytes, IngressError> {
    let limit = state.config.max_event_bytes;
    read_limited(body, limit)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge(limit) => IngressError::TooLarge(limit),
            other => IngressError::Body(other),
        })
}

/// An event as received; a binary-mode body is kept to be sent on as it came.
pub struct Incoming {
    pub event: Event,
    pub raw_data: Option<Bytes>,
}

impl Incoming {
    pub fn of(event: Event) -> Self {
        Self {
            event,
            raw_data: None,
        }
    }

    fn prepare(self, trace: &Option<TraceContext>) -> PreparedEvent {
        PreparedEvent::with_raw_data(self.event, self.raw_data).with_trace(trace.clone())
    }
}

/// The events a CloudEvents request carries, in any of the three modes; a batch
/// no subscriber's queue could ever take whole is refused (413) rather than
/// answered 429 for ever.
pub fn decode(
    state: &AppState,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Vec<Incoming>, IngressError> {
    let events = decode_modes(headers, body)?;
    let most = state.config.subscriber_queue;
    if events.len() > most {
        return Err(IngressError::BatchTooLarge(most));
    }
    Ok(events)
}

fn decode_modes(headers: &HeaderMap, body: Bytes) -> Result<Vec<Incoming>, IngressError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(format) = unsupported_format(content_type) {
        return Err(IngressError::UnsupportedFormat(format!(
            "the event format {format} is not supported; send application/cloudevents+json, a batch or binary mode"
        )));
    }
    Ok(match mode_of(content_type) {
        Mode::Binary => {
            let (event, data) = read_binary(headers, body)?;
            vec![Incoming {
                event,
                raw_data: (!data.is_empty()).then_some(data),
            }]
        }
        Mode::Structured => vec![Incoming::of(read_structured(&body)?)],
        Mode::Batched => read_batch(&body)?.into_iter().map(Incoming::of).collect(),
    })
}

/// What every ingress does to the events it takes in: a TTL a sender brought
/// must have hops left (else 400), one is given where none was, and the arrival
/// time is stamped.
pub fn arrive(events: &mut [Incoming]) -> Result<(), IngressError> {
    let at = hop::arrival_now();
    let batched = events.len() > 1;
    for (i, incoming) in events.iter_mut().enumerate() {
        check_text(&incoming.event).map_err(|error| {
            IngressError::InvalidEvent(match batched {
                true => format!("event [{i}]: {error}"),
                false => error.to_string(),
            })
        })?;
        ttl::check(&incoming.event).map_err(IngressError::InvalidEvent)?;
        ttl::ensure(&mut incoming.event);
        hop::stamp_arrival(&mut incoming.event, &at);
    }
    Ok(())
}

/// A Broker's or Channel's request: its events, arrived.
pub async fn namespaced_events(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Incoming>, IngressError> {
    let body = read_body(state, body).await?;
    let mut events = decode(state, headers, body)?;
    arrive(&mut events)?;
    Ok(events)
}

/// The events ready to send on, each carrying the request's trace context.
pub fn prepared<T: From<PreparedEvent>>(headers: &HeaderMap, events: Vec<Incoming>) -> Vec<T> {
    let trace = TraceContext::of(headers);
    events
        .into_iter()
        .map(|e| T::from(e.prepare(&trace)))
        .collect()
}

/// How long a request waits for room when no subscriber can take its events,
/// before it is refused with 429: holding the connection briefly slows a sender
/// down more cheaply than answering it at once and having it retry at once.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);
const PATIENCE_STEP: std::time::Duration = std::time::Duration::from_millis(2);

/// Where an ingress takes events in.
#[derive(Clone, Copy)]
pub enum Entrance<'a> {
    Broker(&'a BrokerRoute),
    Channel(&'a ChannelRoute),
}

/// Takes the events in: with durable delivery into the log (answered once it
/// holds them; refused whole when its disk budget is full), else straight to
/// the subscribers' queues (`admit`). Watched Brokers' tails see them then.
pub async fn enqueue(
    state: &AppState,
    to: Entrance<'_>,
    events: Vec<Arc<PreparedEvent>>,
) -> Result<(), IngressError> {
    let router = &state.router;
    let tap = |refusal: Option<&str>| match to {
        Entrance::Broker(route) => router.tap_broker(route, &events, || "ingress".into(), refusal),
        Entrance::Channel(route) => router.tap_channel(route, &events, refusal),
    };
    tap(None);
    let log = match to {
        Entrance::Broker(route) => route.log.as_ref(),
        Entrance::Channel(route) => route.log.as_ref(),
    };
    let taken = match log {
        Some(log) => append(state, log, &events).await,
        None => {
            admit(&state.metrics, &events, |events| match to {
                Entrance::Broker(route) => router.send_to_broker(route, events),
                Entrance::Channel(route) => router.send_to_channel(route, events),
            })
            .await
        }
    };
    match (&taken, to) {
        (Err(refusal), _) => tap(Some(&refusal.to_string())),
        (Ok(()), Entrance::Channel(route)) => route.count_taken(events.len()),
        (Ok(()), Entrance::Broker(_)) => {}
    }
    taken
}

async fn append(
    state: &AppState,
    log: &LogHandle,
    events: &[Arc<PreparedEvent>],
) -> Result<(), IngressError> {
    state
        .router
        .append(log, events, Origin::Sender)
        .await
        .map_err(|error| match error {
            AppendError::Full(_) => IngressError::BudgetFull(error.to_string()),
            AppendError::Unavailable(why) => IngressError::Unavailable(why),
            AppendError::TooLarge(why) => IngressError::EventTooLarge(why),
            AppendError::Failed(error) => {
                tracing::error!(%error, "an ingress could not append to its log");
                IngressError::Unavailable("the event log cannot take events now".into())
            }
        })
}

/// Hands the events to the router, waiting up to `PATIENCE` for room.
async fn admit(
    metrics: &Metrics,
    events: &[Arc<PreparedEvent>],
    mut send: impl FnMut(&[Arc<PreparedEvent>]) -> Result<(), Overloaded>,
) -> Result<(), IngressError> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match send(events) {
            Ok(()) => return Ok(()),
            Err(Overloaded) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(PATIENCE_STEP).await
            }
            Err(Overloaded) => {
                metrics.event_rejected();
                return Err(IngressError::Overloaded);
            }
        }
    }
}

pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// The wait for room before 429, on paused time, against a real router and a
/// Trigger whose one queue place frees when its delivery (of a set virtual
/// duration, see `dispatch::testing`) is over.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mesh::dispatch::testing::{deps, event, outcomes, room};
    use crate::mesh::dispatch::{DispatchDeps, Dispatcher};
    use crate::mesh::filter::{Entry, Filter, TriggerIndex};
    use crate::mesh::routing::{BrokerRoute, Router};

    /// A Broker whose one Trigger is busy with an event for `busy`, with no other
    /// place in its queue.
    fn busy_broker(deps: &Arc<DispatchDeps>, busy: Duration) -> (BrokerRoute, Arc<Dispatcher>) {
        let dispatcher = Dispatcher::test("team-a/slow")
            .queue(1)
            .busy(busy)
            .spawn(deps);
        dispatcher
            .try_reserve()
            .expect("room for the first event")
            .send(event("first"));
        let route = BrokerRoute {
            namespace: "team-a".into(),
            name: "default".into(),
            triggers: TriggerIndex::new(vec![Entry {
                trigger: "team-a/slow".into(),
                filter: Arc::new(Filter::Everything),
                value: dispatcher.clone(),
            }]),
            log: None,
        };
        (route, dispatcher)
    }

    fn incoming() -> Vec<Arc<PreparedEvent>> {
        vec![event("second")]
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_room_and_is_admitted_at_the_next_try_after_it_frees() {
        let deps = deps();
        let router = Router::new(deps.metrics.clone());
        let (route, _) = busy_broker(&deps, Duration::from_millis(37));
        let start = tokio::time::Instant::now();

        let admitted = admit(&deps.metrics, &incoming(), |events| {
            router.send_to_broker(&route, events)
        })
        .await;
        assert!(admitted.is_ok(), "{admitted:?}");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(38),
            "tries every 2 ms"
        );
        assert_eq!(outcomes(&deps.metrics, "rejected"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_without_room_for_100_ms_is_refused_and_leaves_nothing_queued() {
        let deps = deps();
        let router = Router::new(deps.metrics.clone());
        let (route, slow) = busy_broker(&deps, Duration::from_secs(3600));
        let start = tokio::time::Instant::now();
        let mut tries = 0;

        let refused = admit(&deps.metrics, &incoming(), |events| {
            tries += 1;
            router.send_to_broker(&route, events)
        })
        .await;
        assert!(
            matches!(refused, Err(IngressError::Overloaded)),
            "{refused:?}"
        );
        assert_eq!(start.elapsed(), PATIENCE);
        assert_eq!(tries, 51, "at 0, 2, …, 100 ms");
        assert_eq!(outcomes(&deps.metrics, "rejected"), 1);
        assert_eq!(
            (room(&slow), deps.in_flight.count()),
            (0, 1),
            "only the first event"
        );
    }
}
