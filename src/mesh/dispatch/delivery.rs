//! One event to one subscriber: attempts with backoff per the delivery policy,
//! then the dead-letter sink (with `knativeerrordest`, `knativeerrorcode` and
//! `knativeerrordata`). An attempt succeeds only when its reply, if any, was
//! taken too: a reply that is malformed or that its destination refuses fails
//! the delivery (as Knative's Broker answers 502 for it), so the event is retried
//! and finally dead-lettered instead of its reply being lost. A 200 whose body
//! is not in a CloudEvents encoding at all is no reply, just a delivery: the
//! data plane's table says a 200 is "Delivery completed, not an error", and a
//! recipient "MAY reply … with a 200 … with or without a response payload".

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use bytes::Bytes;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event};

use super::deps::DispatchDeps;
use super::local::{Local, Refusal};
use super::retry::{RetryDue, Verdict, classify, next_delay};
use super::settle::{RetryBy, Settled};
use super::target::{ReplyTo, Target};
use super::transport::{MAX_RESPONSE_BYTES, Response, Session, TransportError};
use super::ttl;
use crate::bodies::codings;
use crate::mesh::event::PreparedEvent;
use crate::mesh::event::hop::{self, TraceContext};
use crate::mesh::event::{Mode, PREFER, check_text, mode_of, read_binary, read_structured};
use crate::mesh::tap::Outcome;
use crate::telemetry::{DeliveryOutcome, Throttle, shortened};

static UNDELIVERABLE_LOG: Throttle = Throttle::new();

/// How much of a failing response body `knativeerrordata` carries (as Knative).
const ERROR_DATA_MAX: usize = 1024;

/// A worker's connections: to its subscriber, its reply destination and its
/// dead-letter sink.
pub struct Sessions {
    subscriber: Session,
    reply: Session,
    dead_letter: Session,
}

impl Sessions {
    pub fn new(deps: &DispatchDeps) -> Self {
        Self {
            subscriber: Session::new(deps.subscriber_tls.clone()),
            reply: Session::new(deps.subscriber_tls.clone()),
            dead_letter: Session::new(deps.subscriber_tls.clone()),
        }
    }

    /// Resolves when a kept connection closes while its worker waits for
    /// work (the subscriber closed it: an idle timeout, a restart), having
    /// let go of it; pending while none does. Watched as an HTTP client's
    /// reader watches its idle connections, so the next delivery opens a new
    /// one rather than writing into a closed one.
    pub async fn closed_while_idle(&mut self) {
        tokio::select! {
            () = self.subscriber.closed_while_idle() => {}
            () = self.reply.closed_while_idle() => {}
            () = self.dead_letter.closed_while_idle() => {}
        }
    }
}

type Answer = Result<Response, TransportError>;

/// The answer that failed a delivery, and where the request it answered went
/// (what `knativeerrordest` names, as Knative's dispatcher does).
struct Failure {
    answer: Answer,
    from: Answered,
}

#[derive(Clone, Copy)]
enum Answered {
    Subscriber,
    /// The subscriber answered 200 with a reply, and the reply's destination
    /// refused it.
    ReplyDestination,
    DeadLetterSink,
}

/// How a delivery ended here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The subscriber took it: the consumer may settle.
    Delivered,
    /// Dead-lettered or given up: the consumer may settle.
    Failed,
    /// The log delivers the event again when its next attempt is due.
    HandedBack,
}

/// An attempt that did not deliver: how it failed, or that the retry went
/// back to the log.
enum NotDelivered {
    Failed(Failure),
    HandedBack,
}

/// Delivers `event`, telling `settled` (a durable consumer) of each retry it
/// schedules and resuming the schedule it had before a restart.
pub async fn deliver(
    deps: &DispatchDeps,
    target: &Target,
    event: &Arc<PreparedEvent>,
    settled: Option<&Settled>,
    sessions: &mut Sessions,
) -> Ended {
    let started = Instant::now();
    match retry(deps, target, To::Subscriber(event, settled), sessions).await {
        Ok(response) => {
            deps.metrics.event_delivered();
            deps.metrics
                .delivery_took(DeliveryOutcome::Delivered, started.elapsed());
            tell_tail(deps, target, event, || Outcome::Delivered {
                status: response.status,
            });
        }
        Err(NotDelivered::HandedBack) => return Ended::HandedBack,
        Err(NotDelivered::Failed(last)) => {
            dead_letter(deps, target, event, last, started, sessions).await;
            return Ended::Failed;
        }
    }
    Ended::Delivered
}

/// A Trigger's Broker's tail, when someone watches it, hears how it ended.
fn tell_tail<'a>(
    deps: &DispatchDeps,
    target: &Target,
    event: &PreparedEvent,
    outcome: impl FnOnce() -> Outcome<'a>,
) {
    if let Some(point) = &target.tap
        && !deps.taps.idle()
    {
        deps.taps.outcome(point, &event.event, outcome());
    }
}

/// What a delivery sends its event to.
#[derive(Clone, Copy)]
enum To<'a> {
    Subscriber(&'a Arc<PreparedEvent>, Option<&'a Settled>),
    DeadLetterSink(&'a str, &'a PreparedEvent),
}

/// Attempts until delivered, out of retries, or refused for good.
async fn retry(
    deps: &DispatchDeps,
    target: &Target,
    to: To<'_>,
    sessions: &mut Sessions,
) -> Result<Response, NotDelivered> {
    let policy = &target.policy;
    let mut failed = 0u32;
    let settled = match to {
        To::Subscriber(_, settled) => settled,
        To::DeadLetterSink(..) => None,
    };
    if let Some(resume) = settled.and_then(|s| s.resume) {
        failed = resume.failed;
        tokio::time::sleep(resume.wait(policy)).await;
    }
    loop {
        let (result, from) = match to {
            To::Subscriber(event, _) => attempt(deps, target, event, sessions).await,
            To::DeadLetterSink(_, event) if let Some(local) = &target.dead_letter_local => (
                Ok(hand_over(deps, local, &event.event, event.trace.clone(), target).await),
                Answered::DeadLetterSink,
            ),
            To::DeadLetterSink(sink, event) => {
                let wire = event.wire(target.structured);
                let answer = sessions
                    .dead_letter
                    .post(
                        sink,
                        &expecting_no_reply(&wire.headers),
                        &wire.body,
                        policy.timeout,
                    )
                    .await;
                (answer, Answered::DeadLetterSink)
            }
        };
        let status = result.as_ref().ok().map(|r| r.status);
        match classify(status) {
            Verdict::Delivered => {
                return result.map_err(|error| {
                    NotDelivered::Failed(Failure {
                        answer: Err(error),
                        from,
                    })
                });
            }
            Verdict::Retry if failed < policy.retry => {
                failed += 1;
                deps.metrics.event_retried();
                let delay = next_delay(
                    policy,
                    failed,
                    status,
                    result.as_ref().ok().map(|r| &r.headers),
                );
                let due = RetryDue::after(failed, delay);
                let by = settled.map_or(RetryBy::Dispatcher, |s| s.by.retrying(s.seq, due));
                if by == RetryBy::Log {
                    return Err(NotDelivered::HandedBack);
                }
                tokio::time::sleep(delay).await;
            }
            _ => {
                return Err(NotDelivered::Failed(Failure {
                    answer: result,
                    from,
                }));
            }
        }
    }
}

/// One attempt: the event to the subscriber, then its reply (if any) to where
/// replies go. The answer is what the attempt counts as: the subscriber's, or
/// the reply's failure.
async fn attempt(
    deps: &DispatchDeps,
    target: &Target,
    event: &Arc<PreparedEvent>,
    sessions: &mut Sessions,
) -> (Answer, Answered) {
    let response = match &target.local {
        Some(local) => hand_over(deps, local, &event.event, event.trace.clone(), target).await,
        None => {
            let wire = event.wire(target.structured);
            let sent = sessions
                .subscriber
                .post(
                    &target.subscriber,
                    &wire.headers,
                    &wire.body,
                    target.policy.timeout,
                )
                .await;
            match sent {
                Ok(response) => response,
                Err(error) => return (Err(error), Answered::Subscriber),
            }
        }
    };
    // Only a 200 carries a reply: "Responses with a `202` response code MUST NOT
    // be processed as reply events" (Knative data plane), nor may other 2xx.
    if response.status != 200 {
        return (Ok(response), Answered::Subscriber);
    }
    match reply(deps, target, event, &response, &mut sessions.reply).await {
        Ok(()) => (Ok(response), Answered::Subscriber),
        Err((failure, from)) => (Ok(failure), from),
    }
}

/// An event passed to one of our Brokers or Channels, one hop further on the
/// loop guard (so Triggers pointing at each other cannot circle for ever).
async fn hand_over(
    deps: &DispatchDeps,
    to: &Local,
    cause: &Event,
    trace: Option<TraceContext>,
    target: &Target,
) -> Response {
    let mut event = cause.clone();
    if !ttl::inherit(&mut event, cause) {
        deps.metrics.reply_looped();
        tracing::warn!(trigger = %target.label, event_id = ?shortened(cause.id()), %to, "event dropped: its TTL ran out (an event loop?)");
        return Response::synthetic(200, "");
    }
    hop::stamp_arrival(&mut event, &hop::arrival_now());
    let prepared = Arc::new(PreparedEvent::new(event).with_trace(trace));
    match deps.local.hand_over(to, prepared).await {
        Ok(()) => Response::synthetic(202, ""),
        Err(refusal) => refused(to, refusal),
    }
}

fn refused(to: &Local, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Overloaded => Response::synthetic(429, &format!("{to} is overloaded")),
        Refusal::Gone => Response::synthetic(404, &format!("{to} is not routed")),
    }
}

/// Where a 200 answer carrying an event sends it; Err is the failure the
/// delivery then counts as, and whose it is: the subscriber's (its reply is no
/// valid event) or the reply destination's (it did not take the reply).
async fn reply(
    deps: &DispatchDeps,
    target: &Target,
    cause: &PreparedEvent,
    response: &Response,
    session: &mut Session,
) -> Result<(), (Response, Answered)> {
    let Some(reply_to) = &target.reply_to else {
        return Ok(());
    };
    let mut event = match reply_event(response) {
        ReplyBody::NoEvent => return Ok(()),
        ReplyBody::Event(event) => *event,
        ReplyBody::Invalid(why) => {
            tracing::warn!(trigger = %target.label, event_id = ?shortened(cause.event_id()), %why, "the subscriber's reply is not a valid event; delivery failed");
            return Err((Response::synthetic(502, &why), Answered::Subscriber));
        }
    };
    if !ttl::inherit(&mut event, &cause.event) {
        deps.metrics.reply_looped();
        tracing::warn!(trigger = %target.label, event_id = ?shortened(cause.event_id()), "reply dropped: its TTL ran out (an event loop?)");
        return Ok(());
    }
    // The reply continues the trace: the subscriber's own span when it sent
    // one, else its cause's.
    let trace = TraceContext::of(&response.headers).or_else(|| cause.trace.clone());
    match reply_to {
        ReplyTo::Local { to, .. } => {
            hop::stamp_arrival(&mut event, &hop::arrival_now());
            let prepared = Arc::new(PreparedEvent::new(event).with_trace(trace));
            deps.local
                .hand_over(to, prepared)
                .await
                .map_err(|refusal| (refused(to, refusal), Answered::ReplyDestination))
        }
        ReplyTo::Url(url) => {
            let prepared = PreparedEvent::new(event).with_trace(trace);
            let wire = prepared.wire(false);
            match session
                .post(
                    url,
                    &expecting_no_reply(&wire.headers),
                    &wire.body,
                    target.policy.timeout,
                )
                .await
            {
                Ok(answer) if (200..300).contains(&answer.status) => Ok(()),
                Ok(answer) => Err((answer, Answered::ReplyDestination)),
                Err(error) => Err((
                    Response::synthetic(502, &format!("sending the reply to {url}: {error}")),
                    Answered::ReplyDestination,
                )),
            }
        }
    }
}

/// An event's headers without `Prefer: reply`, for where an answer's event
/// would go nowhere (a reply URL, a dead-letter sink): the header promises
/// the sender "will accept a 200 response which includes a CloudEvent".
fn expecting_no_reply(headers: &HeaderMap) -> HeaderMap {
    let mut headers = headers.clone();
    headers.remove(PREFER);
    headers
}

enum ReplyBody {
    /// Empty, or a payload in no CloudEvents encoding ("OK", `{"status": …}`).
    NoEvent,
    Event(Box<Event>),
    Invalid(String),
}

/// A 200 answer is a reply when it carries an event: binary `ce-` headers or a
/// structured body. One that claims to and is not a valid event (or is too
/// large to be one) is invalid; any other body is no reply.
fn reply_event(response: &Response) -> ReplyBody {
    let content_type = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // The media type decides first, as at ingress (HTTP binding §3): a
    // structured reply may carry `ce-` headers as well.
    let mode = mode_of(content_type);
    if mode == Mode::Batched {
        return ReplyBody::Invalid(
            "the subscriber replied with a batch; a reply is one event".to_string(),
        );
    }
    let binary = mode == Mode::Binary && response.headers.contains_key("ce-specversion");
    if !binary && mode != Mode::Structured {
        return ReplyBody::NoEvent;
    }
    if !response.whole {
        return ReplyBody::Invalid(format!(
            "the subscriber's reply is larger than {MAX_RESPONSE_BYTES} bytes"
        ));
    }
    // As at ingress, a coded body is never read (its compressed bytes would
    // go on as the event's data, or be read as JSON that is not there).
    if !response.body.is_empty()
        && let Some(codings) = codings(&response.headers)
    {
        return ReplyBody::Invalid(format!(
            "the subscriber's reply is in Content-Encoding {codings:?}; a reply must be sent uncompressed"
        ));
    }
    let parsed = if binary {
        read_binary(&response.headers, Bytes::clone(&response.body)).map(|(event, _)| event)
    } else {
        read_structured(&response.body)
    };
    match parsed.and_then(|event| check_text(&event).map(|()| event)) {
        Ok(event) => ReplyBody::Event(Box::new(event)),
        Err(error) => ReplyBody::Invalid(format!(
            "the subscriber's reply is not a valid event: {error}"
        )),
    }
}

/// An event that found its subscriber's queue full, straight to the dead-letter sink.
pub async fn dead_letter_overflow(
    deps: &DispatchDeps,
    target: &Target,
    event: &PreparedEvent,
    sessions: &mut Sessions,
) {
    let full = Failure {
        answer: Ok(Response::synthetic(429, "the subscriber's queue was full")),
        from: Answered::Subscriber,
    };
    dead_letter(deps, target, event, full, Instant::now(), sessions).await;
}

async fn dead_letter(
    deps: &DispatchDeps,
    target: &Target,
    event: &PreparedEvent,
    last: Failure,
    started: Instant,
    sessions: &mut Sessions,
) {
    let (code, data, why) = match &last.answer {
        Ok(response) => (
            Some(response.status),
            Some(response.body.clone()),
            format!("status {}", response.status),
        ),
        // No answer to quote: the reason is the data, so whoever reads the dead
        // letter sees why (a refused connection, an untrusted certificate).
        Err(error) => {
            let why = error.to_string();
            (None, Some(Bytes::from(why.clone())), why)
        }
    };
    let dest = match (last.from, &target.reply_to) {
        (Answered::ReplyDestination, Some(reply_to)) => reply_to.address(),
        _ => &target.subscriber,
    };
    let Some(sink) = target.policy.dead_letter_sink.clone() else {
        tell_tail(deps, target, event, || Outcome::Undeliverable {
            reason: &why,
        });
        deps.metrics.event_undeliverable();
        deps.metrics
            .delivery_took(DeliveryOutcome::Undeliverable, started.elapsed());
        let Some(skipped) = UNDELIVERABLE_LOG.allow() else {
            return;
        };
        tracing::warn!(skipped, %dest, trigger = %target.label, event_id = ?shortened(event.event_id()), %why,
            "delivery failed and no dead-letter sink is configured");
        return;
    };
    let mut failed = event.event.clone();
    // What this failure says, not what an earlier one said: a dead letter
    // sent through the mesh again carries its old ones.
    for stale in ["knativeerrordest", "knativeerrorcode", "knativeerrordata"] {
        failed.remove_extension(stale);
    }
    failed.set_extension("knativeerrordest", ExtensionValue::String(dest.to_string()));
    if let Some(code) = code {
        failed.set_extension("knativeerrorcode", ExtensionValue::String(code.to_string()));
    }
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let excerpt = &data[..data.len().min(ERROR_DATA_MAX)];
        let encoded = base64::engine::general_purpose::STANDARD.encode(excerpt);
        failed.set_extension("knativeerrordata", ExtensionValue::String(encoded));
    }
    let failed = PreparedEvent::new(failed).with_trace(event.trace.clone());
    match retry(deps, target, To::DeadLetterSink(&sink, &failed), sessions).await {
        Ok(_) => {
            tell_tail(deps, target, event, || Outcome::DeadLettered {
                sink: &sink,
                dest,
                code,
                reason: &why,
            });
            deps.metrics.event_dead_lettered();
            deps.metrics
                .delivery_took(DeliveryOutcome::DeadLettered, started.elapsed());
            tracing::info!(trigger = %target.label, event_id = ?shortened(event.event_id()), %why, "event sent to the dead-letter sink");
        }
        Err(sink_failure) => {
            deps.metrics.event_undeliverable();
            deps.metrics
                .delivery_took(DeliveryOutcome::Undeliverable, started.elapsed());
            let sink_why = match sink_failure {
                NotDelivered::Failed(Failure {
                    answer: Ok(response),
                    ..
                }) => format!("status {}", response.status),
                NotDelivered::Failed(Failure {
                    answer: Err(error), ..
                }) => error.to_string(),
                // Only a subscriber's delivery is handed back.
                NotDelivered::HandedBack => "handed back to the log".to_string(),
            };
            let reason = format!("{why}; the dead-letter sink {sink}: {sink_why}");
            tell_tail(deps, target, event, || Outcome::Undeliverable {
                reason: &reason,
            });
            tracing::error!(trigger = %target.label, event_id = ?shortened(event.event_id()), %why, dead_letter_sink = %sink, %sink_why,
                "delivery and the dead-letter sink both failed");
        }
    }
}
