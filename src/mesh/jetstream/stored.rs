//! How an event is kept in a JetStream message: written by the ingress and
//! relays (`stored_form`), read back by the consumers (`event_of`).
//!
//! An event is stored framed: a marker, then its binary-mode headers as a
//! delivery sends them, a `name: value` line each, an empty line, and its
//! data byte for byte — binary mode, as Knative's Kafka broker stores
//! records: no base64 and no JSON to write and parse again for every
//! delivery. The headers travel in the payload, not as NATS headers:
//! async-nats keeps NATS headers in a hash map of owned strings, built,
//! written, parsed and copied again for every event (a seventh of the
//! broker's CPU under load, `perf`, 2026-12-05). A delivery renders its
//! headers from the event again rather than sending the stored ones: what
//! another NATS client put on the subject then reaches a subscriber only as
//! an event (percent-encoded, within binary mode's limits), never as raw
//! header bytes.
//! A header carries only text, so the names of integer and boolean
//! extensions (the loop guard's `knativebrokerttl` is one on every event)
//! travel in a line of their own, and come back typed. An event that binary
//! mode would change (data without a stated type, or attributes past what it
//! carries) is stored in structured mode, its trace context in the lines.
//!
//! Messages of versions before this form (binary mode in NATS headers, or
//! structured mode with the trace context in NATS headers) are still read:
//! streams outlive an upgrade.

use axum::http::header::{ACCEPT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event};

use crate::mesh::event::hop::TraceContext;
use crate::mesh::event::{
    EventError, PREFER, PreparedEvent, ce_header, read_binary, read_structured,
};

/// Begins a framed event: a NUL byte, which no structured event (JSON)
/// begins with.
const FRAMED: &[u8] = b"\0meshbroker-event/1\r\n";

/// Names the integer (`i:`) and boolean (`b:`) extensions, space-separated
/// (attribute names are lower-case letters and digits).
const TYPED: HeaderName = HeaderName::from_static("meshbroker-typed-extensions");
/// The same, as a NATS header of the earlier form.
const NATS_TYPED: &str = "Meshbroker-Typed-Extensions";

/// The message's payload (see the module notes).
pub fn stored_form(event: &PreparedEvent) -> Bytes {
    // Binary mode's wire falls back to structured mode for an event it
    // cannot carry (`fits_binary`), without a `ce-specversion` header.
    let binary = binary_keeps(&event.event)
        .then(|| event.wire(false))
        .filter(|wire| wire.headers.contains_key("ce-specversion"));
    let mut framed = Vec::with_capacity(512);
    framed.extend_from_slice(FRAMED);
    let body = if let Some(wire) = binary {
        for (name, value) in &wire.headers {
            if name != PREFER && name != ACCEPT_ENCODING {
                write_line(&mut framed, name.as_str(), value.as_bytes());
            }
        }
        let typed = typed_extensions(&event.event);
        if !typed.is_empty() {
            write_line(&mut framed, TYPED.as_str(), typed.as_bytes());
        }
        &wire.body
    } else {
        if let Some(trace) = &event.trace {
            let mut headers = HeaderMap::new();
            trace.apply(&mut headers);
            for (name, value) in &headers {
                write_line(&mut framed, name.as_str(), value.as_bytes());
            }
        }
        event.structured_body()
    };
    framed.extend_from_slice(b"\r\n");
    framed.reserve_exact(body.len());
    framed.extend_from_slice(body);
    Bytes::from(framed)
}

/// Header values hold no line breaks (`HeaderValue` refuses them), so a
/// line ends where its value does.
fn write_line(framed: &mut Vec<u8>, name: &str, value: &[u8]) {
    framed.extend_from_slice(name.as_bytes());
    framed.extend_from_slice(b": ");
    framed.extend_from_slice(value);
    framed.extend_from_slice(b"\r\n");
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

fn typed_extensions(event: &Event) -> String {
    let mut typed = String::new();
    for (name, value) in event.iter_extensions() {
        let kind = match value {
            ExtensionValue::String(_) => continue,
            ExtensionValue::Integer(_) => "i:",
            ExtensionValue::Boolean(_) => "b:",
        };
        if !typed.is_empty() {
            typed.push(' ');
        }
        typed.push_str(kind);
        typed.push_str(name);
    }
    typed
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

/// Most header lines a stored event may have: `stored_form` writes at most
/// about 94 (binary mode's 90 attributes, Content-Type, the trace context,
/// the typed line). A message with more was not written by meshbroker, and
/// reading it would cost without bound (a header map panics past 32,768).
const MOST_LINES: usize = 128;

/// An event back from a JetStream message, in any form it was stored in.
pub fn event_of(
    payload: &Bytes,
    headers: Option<&async_nats::HeaderMap>,
) -> Result<PreparedEvent, EventError> {
    // An earlier form's data may begin as a framed event does.
    let earlier_binary = headers.is_some_and(|h| h.get("ce-specversion").is_some());
    if !earlier_binary && payload.starts_with(FRAMED) {
        read_framed(payload)
    } else {
        read_earlier_form(payload, headers)
    }
}

fn read_framed(payload: &Bytes) -> Result<PreparedEvent, EventError> {
    let mut headers = HeaderMap::with_capacity(12);
    let mut typed = None;
    let mut at = FRAMED.len();
    for lines in 0.. {
        if lines > MOST_LINES {
            return Err(EventError::new(format!(
                "a stored event has more than {MOST_LINES} header lines"
            )));
        }
        let rest = &payload[at..];
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .filter(|end| *end > 0 && rest[end - 1] == b'\r')
            .ok_or_else(|| EventError::new("a stored event's headers do not end"))?;
        let line = (at, at + end - 1);
        at += end + 1;
        if line.0 == line.1 {
            break;
        }
        let (name, value) = split_line(payload, line)?;
        let again = match name == TYPED {
            true => typed.replace(value).is_some(),
            false => headers.insert(name.clone(), value).is_some(),
        };
        if again {
            return Err(EventError::new(format!(
                "a stored event has header {name} more than once"
            )));
        }
    }
    let data = payload.slice(at..);
    let trace = TraceContext::of(&headers);
    if !headers.contains_key("ce-specversion") {
        return Ok(PreparedEvent::new(read_structured(&data)?).with_trace(trace));
    }
    let (mut event, data) = read_binary(&headers, data)?;
    if let Some(typed) = typed {
        let typed = typed
            .to_str()
            .map_err(|_| EventError::new(format!("{TYPED} is not text")))?;
        retype(&mut event, typed)?;
    }
    Ok(PreparedEvent::with_raw_data(event, Some(data)).with_trace(trace))
}

/// One `name: value` line of a framed event, its value a slice of the
/// payload: only the headers `stored_form` writes (a message another NATS
/// client put on the subject is read no further than ours would be).
fn split_line(
    payload: &Bytes,
    (start, end): (usize, usize),
) -> Result<(HeaderName, HeaderValue), EventError> {
    let line = &payload[start..end];
    let colon = line
        .windows(2)
        .position(|pair| pair == b": ")
        .ok_or_else(|| EventError::new("a stored event's header line has no name"))?;
    let name = &line[..colon];
    let stored = |name: &[u8]| match name.strip_prefix(b"ce-") {
        Some(attribute) => std::str::from_utf8(attribute).ok().and_then(ce_header),
        None => [CONTENT_TYPE, TYPED]
            .into_iter()
            .chain(["traceparent", "tracestate"].map(HeaderName::from_static))
            .find(|known| known.as_str().as_bytes() == name),
    };
    let name = stored(name).ok_or_else(|| {
        EventError::new(format!(
            "a stored event has header {:?}, which meshbroker does not write",
            String::from_utf8_lossy(name)
        ))
    })?;
    let value = HeaderValue::from_maybe_shared(payload.slice(start + colon + 2..end))
        .map_err(|_| EventError::new(format!("a stored event's {name} is not a header value")))?;
    Ok((name, value))
}

/// Binary mode in NATS headers (`ce-specversion` among them), or structured
/// mode with the trace context in NATS headers.
fn read_earlier_form(
    payload: &Bytes,
    nats: Option<&async_nats::HeaderMap>,
) -> Result<PreparedEvent, EventError> {
    let count: usize = nats
        .iter()
        .flat_map(|h| h.iter())
        .map(|(_, v)| v.len())
        .sum();
    if count > MOST_LINES {
        return Err(EventError::new(format!(
            "a stored event has more than {MOST_LINES} headers"
        )));
    }
    let mut http = HeaderMap::new();
    for (name, values) in nats.iter().flat_map(|h| h.iter()) {
        let name: &str = name.as_ref();
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
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
        let (mut event, data) = read_binary(&http, payload.clone())?;
        if let Some(typed) = nats.and_then(|h| h.get(NATS_TYPED)) {
            retype(&mut event, typed.as_str())?;
        }
        PreparedEvent::with_raw_data(event, Some(data))
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
        let mut http = HeaderMap::new();
        http.insert(
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        http.insert("tracestate", HeaderValue::from_static("vendor=1"));
        PreparedEvent::new(event).with_trace(TraceContext::of(&http))
    }

    fn stored_binary(payload: &[u8]) -> bool {
        payload
            .windows(b"\r\nce-specversion: 1.0\r\n".len())
            .any(|w| w == b"\r\nce-specversion: 1.0\r\n")
    }

    /// Read back, an event is delivered byte for byte as it would have been
    /// without JetStream, in either mode, its trace kept.
    fn same_deliveries(original: &PreparedEvent, back: &PreparedEvent) {
        // Extensions are members in no particular order.
        let json = |body: &Bytes| serde_json::from_slice::<serde_json::Value>(body).expect("JSON");
        let (sent, received) = (original.wire(false), back.wire(false));
        assert_eq!(sent.headers, received.headers);
        if sent.headers.contains_key("ce-specversion") {
            assert_eq!(sent.body, received.body);
        } else {
            assert_eq!(json(&sent.body), json(&received.body));
        }
        let (sent, received) = (original.wire(true), back.wire(true));
        assert_eq!(sent.headers, received.headers);
        assert_eq!(json(&sent.body), json(&received.body));
        assert_eq!(
            back.trace.as_ref().map(TraceContext::stored),
            original.trace.as_ref().map(TraceContext::stored)
        );
    }

    fn round_trip(original: &PreparedEvent) -> (bool, PreparedEvent) {
        let payload = stored_form(original);
        let back = event_of(&payload, None).expect("readable");
        same_deliveries(original, &back);
        (stored_binary(&payload), back)
    }

    fn various() -> Vec<Event> {
        let time = "2026-12-03T17:30:00.123456789Z";
        vec![
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
            // Attributes larger than NATS takes as headers (64 KiB) would be
            // as a message's headers; the payload takes them.
            built(
                EventBuilderV10::new()
                    .subject("a".repeat(50 << 10))
                    .data("text/plain", "x"),
            ),
        ]
    }

    #[test]
    fn events_stored_in_binary_mode_come_back_as_they_went_in() {
        for event in various() {
            let (binary, back) = round_trip(&traced(event.clone()));
            assert!(binary, "{event}");
            assert_eq!(back.event.time(), event.time());
        }
        let untraced = PreparedEvent::new(various().remove(0));
        let (binary, back) = round_trip(&untraced);
        assert!(binary && back.trace.is_none());
    }

    fn extensions(event: &Event) -> Vec<(String, ExtensionValue)> {
        let mut all: Vec<_> = event
            .iter_extensions()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn with_typed_extensions() -> Event {
        built(
            EventBuilderV10::new()
                .extension("knativebrokerttl", 255i64)
                .extension("urgent", true)
                .extension("note", "5")
                .data("text/plain", "x"),
        )
    }

    #[test]
    fn integer_and_boolean_extensions_come_back_typed_from_binary_mode() {
        let event = with_typed_extensions();
        let (binary, back) = round_trip(&traced(event.clone()));
        assert!(binary);
        assert_eq!(extensions(&back.event), extensions(&event));
    }

    fn stored_with_line(event: &PreparedEvent, line: &str) -> Bytes {
        let payload = stored_form(event);
        let mut changed = FRAMED.to_vec();
        changed.extend_from_slice(line.as_bytes());
        changed.extend_from_slice(&payload[FRAMED.len()..]);
        Bytes::from(changed)
    }

    #[test]
    fn a_typed_extension_that_does_not_read_back_is_an_unreadable_event() {
        let event = traced(built(EventBuilderV10::new().extension("count", 5i64)));
        let payload = stored_form(&event);
        let typed = |text: &str| {
            Bytes::from(
                String::from_utf8_lossy(&payload)
                    .replace("i:count", text)
                    .into_bytes(),
            )
        };
        assert!(event_of(&typed("i:count"), None).is_ok());
        assert!(event_of(&typed("i:count b:missing"), None).is_err());
        assert!(event_of(&typed("b:count"), None).is_err());
    }

    #[test]
    fn a_stored_event_with_headers_meshbroker_does_not_write_is_unreadable() {
        let event = traced(with_typed_extensions());
        assert!(event_of(&stored_with_line(&event, ""), None).is_ok());
        for line in [
            "transfer-encoding: chunked\r\n",
            "content-length: 1\r\n",
            "content-type: text/plain\r\n",
            "ce-id: again\r\n",
            "no colon\r\n",
            "ce-subject: line\nbreak\r\n",
        ] {
            let payload = stored_with_line(&event, line);
            assert!(event_of(&payload, None).is_err(), "{line:?}");
        }
        let payload = stored_form(&event);
        let cut = payload.slice(..payload.len() - b"\r\n\r\nx".len());
        assert!(event_of(&cut, None).is_err(), "headers without their end");
    }

    #[test]
    fn a_stored_event_with_more_lines_than_meshbroker_writes_is_unreadable() {
        let event = traced(with_typed_extensions());
        let lines = |n: usize| {
            (0..n)
                .map(|i| format!("ce-x{i}: v\r\n"))
                .collect::<String>()
        };
        assert!(event_of(&stored_with_line(&event, &lines(60)), None).is_ok());
        let payload = stored_with_line(&event, &lines(40_000));
        assert!(
            event_of(&payload, None).is_err(),
            "no header map past its limit"
        );
    }

    #[test]
    fn an_earlier_binary_message_whose_data_looks_framed_is_read_as_data() {
        let mut data = FRAMED.to_vec();
        data.extend_from_slice(b"ce-id: other\r\n\r\n");
        let event = traced(built(
            EventBuilderV10::new().data("application/octet-stream", data.clone()),
        ));
        let (payload, nats) = earlier_form(&event);
        let back = event_of(&payload, Some(&nats)).expect("readable");
        assert_eq!(back.event.id(), "e-1");
        assert_eq!(back.wire(false).body, Bytes::from(data));
    }

    #[test]
    fn an_event_binary_mode_cannot_carry_is_stored_structured_without_typed_lines() {
        let mut event = built(EventBuilderV10::new().data("text/plain", "x"));
        for i in 0..200 {
            event.set_extension(&format!("n{i}"), i64::from(i));
        }
        let (binary, back) = round_trip(&traced(event.clone()));
        assert!(!binary, "structured");
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

    /// What versions before the framed form wrote: binary mode in NATS
    /// headers (typed extensions named in one), or structured mode with the
    /// trace context in NATS headers.
    fn earlier_form(event: &PreparedEvent) -> (Bytes, async_nats::HeaderMap) {
        let wire = event.wire(!binary_keeps(&event.event));
        let binary = wire.headers.contains_key("ce-specversion");
        let mut headers = HeaderMap::new();
        if binary {
            headers = wire.headers.clone();
        } else if let Some(trace) = &event.trace {
            trace.apply(&mut headers);
        }
        let mut nats = async_nats::HeaderMap::new();
        for (name, value) in &headers {
            if name != PREFER && name != ACCEPT_ENCODING {
                nats.append(name.as_str(), value.to_str().expect("text"));
            }
        }
        let typed = typed_extensions(&event.event);
        if binary && !typed.is_empty() {
            nats.insert(NATS_TYPED, typed.as_str());
        }
        let payload = match binary {
            true => wire.body.clone(),
            false => event.structured_body().clone(),
        };
        (payload, nats)
    }

    #[test]
    fn messages_of_the_earlier_forms_are_still_read() {
        let mut events: Vec<Event> = various().into_iter().take(5).collect();
        events.push(with_typed_extensions());
        let mut untyped = built(EventBuilderV10::new().data("", json!({"a": 1})));
        untyped.set_datacontenttype(None::<String>);
        events.push(untyped);
        for event in events {
            let original = traced(event.clone());
            let (payload, nats) = earlier_form(&original);
            let back = event_of(&payload, Some(&nats)).expect("readable");
            same_deliveries(&original, &back);
            assert_eq!(extensions(&back.event), extensions(&event), "types kept");
        }
    }
}
