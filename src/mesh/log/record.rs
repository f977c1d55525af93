//! Events as a log keeps them. Each commit writes a log's new events as one
//! batch: a CloudEvents JSON batch (`application/cloudevents-batch+json`, an
//! array of structured-mode events, binary data as `data_base64`), with the
//! events' trace contexts beside it as a JSON array (or nothing when none has
//! one). One row per batch rather than per event is what keeps appends and
//! trims cheap: SQLite then inserts and frees a few large rows, not thousands
//! of small ones.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::mesh::event::hop::TraceContext;
use crate::mesh::event::{EventError, PreparedEvent, read_structured};

/// An event read from a log, at its place in it.
#[derive(Clone)]
pub struct Record {
    pub seq: u64,
    /// When it was appended, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub event: Arc<PreparedEvent>,
}

/// An event ready to be written.
#[derive(Clone)]
pub struct Encoded {
    pub body: Bytes,
    pub trace: Option<String>,
}

impl Encoded {
    /// The event's structured form, rendered once per event however many
    /// logs it is appended to (a Channel's, then each Broker's).
    pub fn of(event: &PreparedEvent) -> Self {
        Self {
            body: event.structured_body().clone(),
            trace: event.trace.as_ref().map(TraceContext::stored),
        }
    }

    /// What it costs on disk, as budgets count it.
    pub fn size(&self) -> u64 {
        (self.body.len() + self.trace.as_ref().map_or(0, String::len)) as u64
    }
}

/// A batch as stored: the events and, if any has one, their trace contexts.
pub struct Batch {
    pub events: Vec<u8>,
    pub traces: Option<String>,
}

impl Batch {
    pub fn of<'a>(encoded: impl ExactSizeIterator<Item = &'a Encoded> + Clone) -> Self {
        let size: usize = encoded.clone().map(|e| e.body.len() + 1).sum();
        let mut events = Vec::with_capacity(size + 2);
        events.push(b'[');
        for (i, event) in encoded.clone().enumerate() {
            if i > 0 {
                events.push(b',');
            }
            // Each body is a whole JSON object (`write_structured`), so the
            // array is valid JSON.
            events.extend_from_slice(&event.body);
        }
        events.push(b']');
        let traces: Vec<Option<&str>> = encoded.map(|e| e.trace.as_deref()).collect();
        let traces = traces
            .iter()
            .any(Option::is_some)
            .then(|| serde_json::to_string(&traces).unwrap_or_default());
        Self { events, traces }
    }
}

/// Milliseconds since the Unix epoch: when a record was appended.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `take` events of a stored batch from its `skip`-th on, in order (the
/// others are not decoded).
pub fn decode_batch(
    events: &[u8],
    traces: Option<&str>,
    skip: usize,
    take: usize,
) -> Result<Vec<PreparedEvent>, EventError> {
    let bodies: Vec<&serde_json::value::RawValue> = serde_json::from_slice(events)
        .map_err(|e| EventError::new(format!("a stored batch is not a JSON array: {e}")))?;
    let traces: Vec<Option<String>> = match traces {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| EventError::new(format!("a stored batch's traces do not read: {e}")))?,
        None => Vec::new(),
    };
    bodies
        .into_iter()
        .enumerate()
        .skip(skip)
        .take(take)
        .map(|(i, body)| {
            let event = read_structured(body.get().as_bytes())?;
            let trace = traces.get(i).and_then(|t| t.as_deref());
            Ok(PreparedEvent::new(event).with_trace(trace.and_then(TraceContext::from_stored)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};

    use super::*;

    #[test]
    fn an_event_and_its_trace_come_back_as_they_went_in() {
        let event = EventBuilderV10::new()
            .id("e-1")
            .source("/orders")
            .ty("order.created")
            .data("application/octet-stream", vec![0u8, 159, 146, 150])
            .extension("tenant", "acme")
            .build()
            .expect("an event");
        let mut headers = HeaderMap::new();
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert("traceparent", HeaderValue::from_static(parent));
        headers.insert("tracestate", HeaderValue::from_static("congo=t61rcWkgMzE"));
        let prepared = PreparedEvent::new(event.clone()).with_trace(TraceContext::of(&headers));

        let untraced = PreparedEvent::new(event.clone());

        let encoded = [Encoded::of(&untraced), Encoded::of(&prepared)];
        let batch = Batch::of(encoded.iter());
        let back = decode_batch(&batch.events, batch.traces.as_deref(), 0, 2).expect("decodes");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].event, event);
        assert_eq!(back[0].trace, None);
        assert_eq!(back[1].event, event);
        assert_eq!(back[1].trace, prepared.trace);
        assert_eq!(back[1].event.id(), "e-1");
        assert!(encoded[1].size() > encoded[1].body.len() as u64);
    }

    #[test]
    fn a_batch_without_traces_stores_none_and_is_a_cloudevents_json_batch() {
        let event = EventBuilderV10::new()
            .id("e-2")
            .source("/orders")
            .ty("order.created")
            .build()
            .expect("an event");
        let encoded = [Encoded::of(&PreparedEvent::new(event))];
        let batch = Batch::of(encoded.iter());
        assert_eq!(batch.traces, None);
        let array: Vec<serde_json::Value> =
            serde_json::from_slice(&batch.events).expect("a JSON array");
        assert_eq!(array[0]["id"], "e-2");
        assert_eq!(array[0]["specversion"], "1.0");
    }
}
