//! What every ingress does first: only POST (OPTIONS answers `Allow`), refuse
//! while not ready or draining, read the body within the limit, and decode the
//! events by content mode.

use axum::body::Body;
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cloudevents::Event;

use std::sync::Arc;

use super::IngressError;
use crate::mesh::dispatch::{PreparedEvent, ttl};
use crate::mesh::event::{Mode, mode_of, read_batch, read_binary, read_structured};
use crate::mesh::routing::Overloaded;
use crate::server::AppState;

/// Ok(None) for POST; Ok(Some(response)) answers OPTIONS; Err for other methods.
pub fn preflight(method: &Method) -> Result<Option<Response>, IngressError> {
    match *method {
        Method::POST => Ok(None),
        Method::OPTIONS => Ok(Some(
            (
                StatusCode::NO_CONTENT,
                [(ALLOW, HeaderValue::from_static("POST, OPTIONS"))],
            )
                .into_response(),
        )),
        _ => Err(IngressError::MethodNotAllowed),
    }
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
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| IngressError::TooLarge(limit))
}

/// The events a CloudEvents request carries, in any of the three modes.
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
}

pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Vec<Incoming>, IngressError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    Ok(match mode_of(content_type) {
        Mode::Binary => {
            let raw_data = (!body.is_empty()).then(|| body.clone());
            vec![Incoming {
                event: read_binary(headers, body)?,
                raw_data,
            }]
        }
        Mode::Structured => vec![Incoming::of(read_structured(&body)?)],
        Mode::Batched => read_batch(&body)?.into_iter().map(Incoming::of).collect(),
    })
}

/// A Broker's or Channel's request: its events, each given the loop guard's TTL.
pub async fn namespaced_events(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Incoming>, IngressError> {
    let body = read_body(state, body).await?;
    let mut events = decode(headers, body)?;
    for incoming in &mut events {
        ttl::ensure(&mut incoming.event);
    }
    Ok(events)
}

/// How long a request waits for room when no subscriber can take its events,
/// before it is refused with 429: holding the connection briefly slows a sender
/// down more cheaply than answering it at once and having it retry at once.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);
const PATIENCE_STEP: std::time::Duration = std::time::Duration::from_millis(2);

/// Hands the events to the router, waiting up to `PATIENCE` for room.
pub async fn admit(
    state: &AppState,
    events: Vec<Incoming>,
    mut send: impl FnMut(&[Arc<PreparedEvent>]) -> Result<(), Overloaded>,
) -> Result<(), IngressError> {
    let events: Vec<Arc<PreparedEvent>> = events
        .into_iter()
        .map(|e| Arc::new(PreparedEvent::with_raw_data(e.event, e.raw_data)))
        .collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match send(&events) {
            Ok(()) => return Ok(()),
            Err(Overloaded) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(PATIENCE_STEP).await
            }
            Err(Overloaded) => {
                state.metrics.event_rejected();
                return Err(IngressError::Overloaded);
            }
        }
    }
}

pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}
