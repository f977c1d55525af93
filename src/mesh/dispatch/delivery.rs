//! One event to one subscriber: attempts with backoff per the delivery policy,
//! then the dead-letter sink (with `knativeerrordest`, `knativeerrorcode` and
//! `knativeerrordata`), and a reply event handed back to the Broker.

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use bytes::Bytes;
use cloudevents::Event;
use cloudevents::event::ExtensionValue;

use super::dispatcher::{DispatchDeps, Target};
use super::prepared::PreparedEvent;
use super::retry::{Verdict, classify, next_delay};
use super::transport::{Response, Session, TransportError};
use super::ttl;
use crate::mesh::event::{STRUCTURED_CONTENT_TYPE, read_binary, read_structured};
use crate::telemetry::{DeliveryOutcome, Throttle};

static UNDELIVERABLE_LOG: Throttle = Throttle::new();

/// How much of a failing response body `knativeerrordata` carries (as Knative).
const ERROR_DATA_MAX: usize = 1024;

/// A worker's connections: one to its subscriber, one to its dead-letter sink.
#[derive(Default)]
pub struct Sessions {
    subscriber: Session,
    dead_letter: Session,
}

pub async fn deliver(
    deps: &DispatchDeps,
    target: &Target,
    event: &Arc<PreparedEvent>,
    sessions: &mut Sessions,
) {
    let started = Instant::now();
    let outcome = attempt_all(
        deps,
        target,
        &target.subscriber,
        event,
        &mut sessions.subscriber,
    )
    .await;
    match outcome {
        Ok(response) => {
            deps.metrics.event_delivered();
            deps.metrics
                .delivery_took(DeliveryOutcome::Delivered, started.elapsed());
            reply(deps, target, event, response);
        }
        Err(last) => {
            dead_letter(
                deps,
                target,
                event,
                last,
                started,
                &mut sessions.dead_letter,
            )
            .await
        }
    }
}

/// Tries `url` until delivered, out of retries, or refused for good.
async fn attempt_all(
    deps: &DispatchDeps,
    target: &Target,
    url: &str,
    event: &PreparedEvent,
    session: &mut Session,
) -> Result<Response, Result<Response, TransportError>> {
    let policy = &target.policy;
    let mut failed = 0u32;
    loop {
        let wire = event.wire(target.structured);
        let result = session
            .post(url, wire.headers.clone(), wire.body.clone(), policy.timeout)
            .await;
        let status = result.as_ref().ok().map(|r| r.status);
        match classify(status) {
            Verdict::Delivered => return result.map_err(Err),
            Verdict::Retry if failed < policy.retry => {
                failed += 1;
                deps.metrics.event_retried();
                let delay = next_delay(
                    policy,
                    failed,
                    status,
                    result.as_ref().ok().map(|r| &r.headers),
                );
                tokio::time::sleep(delay).await;
            }
            _ => return Err(result),
        }
    }
}

/// An event that found its subscriber's queue full, straight to the dead-letter sink.
pub async fn dead_letter_overflow(
    deps: &DispatchDeps,
    target: &Target,
    event: &PreparedEvent,
    sessions: &mut Sessions,
) {
    let started = Instant::now();
    let full = Response {
        status: 429,
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"the subscriber's queue was full"),
    };
    dead_letter(
        deps,
        target,
        event,
        Ok(full),
        started,
        &mut sessions.dead_letter,
    )
    .await;
}

async fn dead_letter(
    deps: &DispatchDeps,
    target: &Target,
    event: &PreparedEvent,
    last: Result<Response, TransportError>,
    started: Instant,
    session: &mut Session,
) {
    let (code, data, why) = match &last {
        Ok(response) => (
            Some(response.status),
            Some(response.body.clone()),
            format!("status {}", response.status),
        ),
        Err(error) => (None, None, error.to_string()),
    };
    let Some(sink) = target.policy.dead_letter_sink.clone() else {
        deps.metrics.event_undeliverable();
        deps.metrics
            .delivery_took(DeliveryOutcome::Undeliverable, started.elapsed());
        let Some(skipped) = UNDELIVERABLE_LOG.allow() else {
            return;
        };
        tracing::warn!(skipped, subscriber = %target.subscriber, trigger = %target.label, event_id = %event.event_id(), %why,
            "delivery failed and no dead-letter sink is configured");
        return;
    };
    let mut failed = event.event.clone();
    failed.set_extension(
        "knativeerrordest",
        ExtensionValue::String(target.subscriber.clone()),
    );
    if let Some(code) = code {
        failed.set_extension("knativeerrorcode", ExtensionValue::String(code.to_string()));
    }
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let excerpt = &data[..data.len().min(ERROR_DATA_MAX)];
        let encoded = base64::engine::general_purpose::STANDARD.encode(excerpt);
        failed.set_extension("knativeerrordata", ExtensionValue::String(encoded));
    }
    let failed = PreparedEvent::new(failed);
    match attempt_all(deps, target, &sink, &failed, session).await {
        Ok(_) => {
            deps.metrics.event_dead_lettered();
            deps.metrics
                .delivery_took(DeliveryOutcome::DeadLettered, started.elapsed());
            tracing::info!(trigger = %target.label, event_id = %event.event_id(), %why, "event sent to the dead-letter sink");
        }
        Err(sink_failure) => {
            deps.metrics.event_undeliverable();
            deps.metrics
                .delivery_took(DeliveryOutcome::Undeliverable, started.elapsed());
            let sink_why = match sink_failure {
                Ok(response) => format!("status {}", response.status),
                Err(error) => error.to_string(),
            };
            tracing::error!(trigger = %target.label, event_id = %event.event_id(), %why, dead_letter_sink = %sink, %sink_why,
                "delivery and the dead-letter sink both failed");
        }
    }
}

/// A 2xx answer carrying an event is a reply: it re-enters the Broker, one TTL
/// step closer to the loop guard.
fn reply(deps: &DispatchDeps, target: &Target, cause: &PreparedEvent, response: Response) {
    let Some((namespace, broker)) = &target.reply_to else {
        return;
    };
    let Some(mut event) = reply_event(response) else {
        return;
    };
    if !ttl::inherit(&mut event, &cause.event) {
        deps.metrics.reply_looped();
        tracing::warn!(trigger = %target.label, event_id = %cause.event_id(), "reply dropped: its TTL ran out (an event loop?)");
        return;
    }
    deps.replies.reply(namespace, broker, event);
}

fn reply_event(response: Response) -> Option<Event> {
    let content_type = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = if content_type.starts_with(STRUCTURED_CONTENT_TYPE) {
        read_structured(&response.body)
    } else if response.headers.contains_key("ce-specversion") {
        read_binary(&response.headers, Bytes::clone(&response.body))
    } else {
        return None;
    };
    parsed
        .map_err(
            |error| tracing::warn!(%error, "the subscriber replied with an invalid event; ignored"),
        )
        .ok()
}
