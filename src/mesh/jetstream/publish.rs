//! A Broker's or Channel's log in JetStream, as its ingress and relays append
//! to it: each event published to the log's subject with `Nats-Msg-Id` from
//! its `source` and `id` and the trace context in the W3C headers, answered
//! once JetStream acknowledged every one of them.
//!
//! An event is stored in binary mode — its attributes in `ce-` headers, its
//! data as the message, byte for byte — as Knative's Kafka broker stores
//! records: no base64 and no JSON to write and parse again for every
//! delivery (the consumer's biggest cost when stored in structured mode).
//! Headers carry only text, so the names of integer and boolean extensions
//! (the loop guard's `knativebrokerttl` is one on every event) travel in a
//! header of their own, and they come back typed. An event whose data has no
//! stated type is stored in structured mode instead (binary mode would give
//! it one, or lose empty data). Both forms are read back; a message without
//! `ce-specversion` is structured.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use axum::http::HeaderValue;
use axum::http::header::ACCEPT_ENCODING;
use bytes::Bytes;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event};
use sha2::{Digest, Sha256};

use super::connect::JetStream;
use super::streams::StreamSpec;
use crate::mesh::event::hop::TraceContext;
use crate::mesh::event::{
    EventError, PREFER, PreparedEvent, fits_binary, read_binary, read_structured,
};
use crate::mesh::log::AppendError;

pub struct StreamLog {
    /// `broker/<ns>/<name>` or `channel/<ns>/<name>`, as errors name it.
    pub name: String,
    pub subject: String,
    pub stream: StreamSpec,
    js: Arc<JetStream>,
}

impl StreamLog {
    pub fn new(name: String, subject: String, stream: StreamSpec, js: Arc<JetStream>) -> Self {
        Self {
            name,
            subject,
            stream,
            js,
        }
    }

    /// Publishes `events` in order and waits for JetStream's acknowledgement
    /// of each. With `dedupe`, a sender that retries after a failure is not
    /// stored twice (the message ids), whatever part of the batch went in
    /// before.
    pub async fn append(
        &self,
        events: &[Arc<PreparedEvent>],
        dedupe: bool,
    ) -> Result<(), AppendError> {
        if !self.js.is_connected() {
            return Err(AppendError::Unavailable("NATS is not reachable".into()));
        }
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let sent = self
                .js
                .context
                .send_publish(self.subject.clone(), message_of(event, dedupe))
                .await;
            acks.push(sent.map_err(|e| self.refusal(e))?);
        }
        for ack in acks {
            ack.await.map_err(|e| self.refusal(e))?;
        }
        Ok(())
    }

    fn refusal(&self, error: async_nats::jetstream::context::PublishError) -> AppendError {
        let full = std::error::Error::source(&error)
            .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
            .is_some_and(|e| e.error_code() == ErrorCode::STREAM_STORE_FAILED);
        if full {
            return AppendError::Full(self.name.clone());
        }
        let why = match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => {
                return AppendError::TooLarge(
                    "the event is larger than one NATS message may be (the server's max_payload)"
                        .into(),
                );
            }
            PublishErrorKind::StreamNotFound => {
                format!("{} is not set up in JetStream yet", self.name)
            }
            _ => format!("JetStream did not store the event: {error}"),
        };
        AppendError::Unavailable(why)
    }
}

/// An event as a JetStream message; with `dedupe`, identified by its
/// `source` and `id`.
fn message_of(event: &PreparedEvent, dedupe: bool) -> PublishMessage {
    let (payload, headers) = stored_form(event, dedupe);
    PublishMessage::build().payload(payload).headers(headers)
}

/// The message's payload and headers: binary mode where it keeps the event
/// as it is, else structured mode (see the module notes).
fn stored_form(event: &PreparedEvent, dedupe: bool) -> (Bytes, HeaderMap) {
    let binary = binary_keeps(&event.event)
        .then(|| binary_form(event))
        .flatten();
    let (payload, mut headers) = binary.unwrap_or_else(|| {
        let mut headers = HeaderMap::new();
        if let Some(trace) = &event.trace {
            let mut http = axum::http::HeaderMap::new();
            trace.apply(&mut http);
            // A trace context NATS cannot carry is left out, never a panic.
            let _ = copy_headers(&http, &mut headers);
        }
        (event.structured_body().clone(), headers)
    });
    if dedupe {
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            message_id(event.event.source(), event.event_id()),
        );
    }
    (payload, headers)
}

/// Whether binary mode gives back exactly this event's data: a Content-Type
/// is data's (none with data would read back as untyped bytes; one without
/// data would read back as empty data).
fn binary_keeps(event: &Event) -> bool {
    match event.data() {
        Some(_) => event.datacontenttype().is_some(),
        None => event.datacontenttype().is_none() && event.dataschema().is_none(),
    }
}

/// Names the integer (`i:`) and boolean (`b:`) extensions, space-separated
/// (attribute names are lower-case letters and digits).
const TYPED: &str = "Meshbroker-Typed-Extensions";

/// NATS refuses a message whose headers pass 64 KiB; an event with
/// attributes that large (a subject of a megabyte is valid) is stored in
/// structured mode.
const MOST_HEADER_BYTES: usize = 32 << 10;

/// The event's binary-mode request as a message (its trace context
/// included), or None when its headers do not fit NATS.
fn binary_form(event: &PreparedEvent) -> Option<(Bytes, HeaderMap)> {
    // What binary mode cannot carry is not written as its structured
    // fallback here: that would go out under binary mode's typed-extension
    // header, which lists every typed extension, however many.
    if !fits_binary(&event.event) {
        return None;
    }
    let wire = event.wire(false);
    let header_bytes: usize = wire
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MOST_HEADER_BYTES {
        return None;
    }
    let mut headers = HeaderMap::new();
    copy_headers(&wire.headers, &mut headers)?;
    let typed: Vec<String> = event
        .event
        .iter_extensions()
        .filter_map(|(name, value)| match value {
            ExtensionValue::String(_) => None,
            ExtensionValue::Integer(_) => Some(format!("i:{name}")),
            ExtensionValue::Boolean(_) => Some(format!("b:{name}")),
        })
        .collect();
    if !typed.is_empty() {
        headers.insert(
            TYPED,
            typed.join(" ").parse::<async_nats::HeaderValue>().ok()?,
        );
    }
    Some((wire.body.clone(), headers))
}

/// Gives the extensions `TYPED` names their types back.
fn retype(event: &mut Event, typed: &str) -> Result<(), EventError> {
    for entry in typed.split(' ').filter(|entry| !entry.is_empty()) {
        let (kind, name) = entry
            .split_once(':')
            .ok_or_else(|| EventError::new(format!("{TYPED}: {entry:?} is not kind:name")))?;
        let Some(ExtensionValue::String(text)) = event.extension(name).cloned() else {
            return Err(EventError::new(format!(
                "{TYPED}: no text extension {name}"
            )));
        };
        let value = match kind {
            "i" => text.parse::<i64>().map(ExtensionValue::Integer).ok(),
            "b" => text.parse::<bool>().map(ExtensionValue::Boolean).ok(),
            _ => None,
        }
        .ok_or_else(|| EventError::new(format!("{TYPED}: {name} is not of kind {kind}")))?;
        event.set_extension(name, value);
    }
    Ok(())
}

/// Copies HTTP headers into NATS ones, all but `Prefer` and
/// `Accept-Encoding` (a delivery's, not the event's); None when one cannot be
/// a NATS header.
fn copy_headers(http: &axum::http::HeaderMap, nats: &mut HeaderMap) -> Option<()> {
    for (name, value) in http {
        if name == PREFER || name == ACCEPT_ENCODING {
            continue;
        }
        let name = async_nats::header::HeaderName::try_from(name.as_str()).ok()?;
        let value = value
            .to_str()
            .ok()?
            .parse::<async_nats::HeaderValue>()
            .ok()?;
        nats.append(name, value);
    }
    Some(())
}

/// `Nats-Msg-Id`: a digest of `source` and `id`, which together identify an
/// event (CloudEvents), so any id a sender chose — a megabyte long, or with
/// line breaks a header cannot hold — makes a short, valid header.
fn message_id(source: &str, id: &str) -> String {
    let mut digest = Sha256::new();
    digest.update((source.len() as u64).to_be_bytes());
    digest.update(source.as_bytes());
    digest.update(id.as_bytes());
    crate::ids::hex(&digest.finalize()[..16])
}

/// An event back from a JetStream message, in either form.
pub fn event_of(payload: &Bytes, headers: Option<&HeaderMap>) -> Result<PreparedEvent, EventError> {
    let mut http = axum::http::HeaderMap::new();
    for (name, values) in headers.iter().flat_map(|h| h.iter()) {
        let name: &str = name.as_ref();
        let Ok(name) = axum::http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value.as_str()) {
                http.append(name.clone(), value);
            }
        }
    }
    let trace = TraceContext::of(&http);
    let event = if http.contains_key("ce-specversion") {
        let mut event = read_binary(&http, payload.clone())?;
        if let Some(typed) = headers.and_then(|h| h.get(TYPED)) {
            retype(&mut event, typed.as_str())?;
        }
        // The data is the payload itself: delivered without another copy.
        PreparedEvent::with_raw_data(event, Some(payload.clone()))
    } else {
        PreparedEvent::new(read_structured(payload)?)
    };
    Ok(event.with_trace(trace))
}

#[cfg(test)]
mod tests {
    use cloudevents::{AttributesWriter, Data, EventBuilder, EventBuilderV10};
    use serde_json::json;

    use super::*;

    fn built(builder: EventBuilderV10) -> Event {
        builder
            .id("e-1")
            .source("/orders")
            .ty("order.created")
            .build()
            .expect("an event")
    }

    fn traced(event: Event) -> PreparedEvent {
        let mut http = axum::http::HeaderMap::new();
        http.insert(
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        http.insert("tracestate", HeaderValue::from_static("vendor=1"));
        PreparedEvent::new(event).with_trace(TraceContext::of(&http))
    }

    /// Stored and read back, an event is delivered byte for byte as it
    /// would have been without JetStream, in either mode, its trace kept.
    fn round_trip(original: &PreparedEvent) -> (bool, PreparedEvent) {
        let (payload, headers) = stored_form(original, true);
        let binary = headers.get("ce-specversion").is_some();
        let back = event_of(&payload, Some(&headers)).expect("readable");
        let (sent, received) = (original.wire(false), back.wire(false));
        assert_eq!(sent.headers, received.headers);
        assert_eq!(sent.body, received.body);
        let (sent, received) = (original.wire(true), back.wire(true));
        assert_eq!(sent.headers, received.headers);
        // Extensions are members in no particular order.
        let json = |body: &Bytes| serde_json::from_slice::<serde_json::Value>(body).expect("JSON");
        assert_eq!(json(&sent.body), json(&received.body));
        (binary, back)
    }

    #[test]
    fn events_stored_in_binary_mode_come_back_as_they_went_in() {
        let time = "2026-12-03T17:30:00.123456789Z";
        let events = [
            built(EventBuilderV10::new().data("application/octet-stream", vec![0u8, 255, 10])),
            built(EventBuilderV10::new().data("application/json", json!({"b": 1, "a": [true]}))),
            built(EventBuilderV10::new().data("text/plain", "plain text")),
            built(EventBuilderV10::new()),
            built(
                EventBuilderV10::new()
                    .subject("a subject, with spaces and ü")
                    .time(time)
                    .extension("region", "eu %20 west")
                    .data_with_schema(
                        "application/json; charset=utf-8",
                        "https://example.com/schema",
                        json!({"id": 7}),
                    ),
            ),
        ];
        for event in events {
            let (binary, back) = round_trip(&traced(event.clone()));
            assert!(binary, "{event}");
            assert_eq!(back.event.time(), event.time());
            assert_eq!(
                back.trace.as_ref().map(TraceContext::stored),
                traced(event).trace.as_ref().map(TraceContext::stored)
            );
        }
    }

    fn extensions(event: &Event) -> Vec<(String, ExtensionValue)> {
        let mut all: Vec<_> = event
            .iter_extensions()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[test]
    fn integer_and_boolean_extensions_come_back_typed_from_binary_mode() {
        let event = built(
            EventBuilderV10::new()
                .extension("knativebrokerttl", 255i64)
                .extension("urgent", true)
                .extension("note", "5")
                .data("text/plain", "x"),
        );
        let (binary, back) = round_trip(&traced(event.clone()));
        assert!(binary);
        assert_eq!(extensions(&back.event), extensions(&event));
    }

    #[test]
    fn a_typed_extension_that_does_not_read_back_is_an_unreadable_event() {
        let event = traced(built(EventBuilderV10::new().extension("count", 5i64)));
        let (payload, mut headers) = stored_form(&event, false);
        headers.insert(TYPED, "i:count b:missing");
        assert!(event_of(&payload, Some(&headers)).is_err());
        headers.insert(TYPED, "b:count");
        assert!(event_of(&payload, Some(&headers)).is_err());
    }

    #[test]
    fn an_event_with_attributes_too_large_for_nats_headers_is_stored_structured() {
        let event = built(
            EventBuilderV10::new()
                .subject("a".repeat(MOST_HEADER_BYTES))
                .data("text/plain", "x"),
        );
        let (binary, _) = round_trip(&traced(event));
        assert!(!binary);
    }

    #[test]
    fn an_event_binary_mode_cannot_carry_is_stored_structured_without_typed_headers() {
        let mut event = built(EventBuilderV10::new().data("text/plain", "x"));
        for i in 0..200 {
            event.set_extension(&format!("n{i}"), i64::from(i));
        }
        let (payload, headers) = stored_form(&traced(event.clone()), false);
        assert!(headers.get("ce-specversion").is_none(), "structured");
        assert!(headers.get(TYPED).is_none(), "no list of typed extensions");
        let back = event_of(&payload, Some(&headers)).expect("readable");
        assert_eq!(extensions(&back.event), extensions(&event), "types kept");
    }

    #[test]
    fn events_binary_mode_would_change_are_stored_structured() {
        // Empty bytes of no type: binary mode would read back no data at all.
        let mut untyped = built(EventBuilderV10::new().data("x/y", Data::Binary(Vec::new())));
        untyped.set_datacontenttype(None::<String>);
        let mut json_untyped = built(EventBuilderV10::new().data("", json!({"a": 1})));
        json_untyped.set_datacontenttype(None::<String>);
        let with_typed = |mut event: Event| {
            event.set_extension("count", 5i64);
            event
        };
        for event in [with_typed(untyped), with_typed(json_untyped)] {
            let (binary, back) = round_trip(&traced(event.clone()));
            assert!(!binary, "{event}");
            assert_eq!(extensions(&back.event), extensions(&event), "types kept");
        }
    }

    #[test]
    fn message_ids_tell_events_apart_and_fit_a_header() {
        let id = message_id("/orders", "e-1");
        assert_eq!(
            id,
            message_id("/orders", "e-1"),
            "the same event, the same id"
        );
        assert_ne!(id, message_id("/orders", "e-2"));
        assert_ne!(message_id("/a b", "c"), message_id("/a", "b c"));
        let odd = message_id("/orders", "line\r\nbreak");
        assert_eq!(odd.len(), 32);
        assert!(odd.parse::<async_nats::HeaderValue>().is_ok());
    }
}
