//! An event as a log keeps it: the body a structured-mode request would carry
//! (binary data as `data_base64`), and the trace context beside it.

use std::sync::Arc;

use bytes::Bytes;

use crate::mesh::event::hop::TraceContext;
use crate::mesh::event::{EventError, PreparedEvent, read_structured, write_structured};

/// An event read from a log, at its place in it.
#[derive(Clone)]
pub struct Record {
    pub seq: u64,
    /// When it was appended, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub event: Arc<PreparedEvent>,
}

/// An event ready to be written.
pub struct Encoded {
    pub body: Bytes,
    pub trace: Option<String>,
}

impl Encoded {
    pub fn of(event: &PreparedEvent) -> Self {
        Self {
            body: write_structured(&event.event),
            trace: event.trace.as_ref().map(TraceContext::stored),
        }
    }

    /// What it costs on disk, as budgets count it.
    pub fn size(&self) -> u64 {
        (self.body.len() + self.trace.as_ref().map_or(0, String::len)) as u64
    }
}

pub fn decode(body: &[u8], trace: Option<&str>) -> Result<PreparedEvent, EventError> {
    let event = read_structured(body)?;
    Ok(PreparedEvent::new(event).with_trace(trace.and_then(TraceContext::from_stored)))
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

        let encoded = Encoded::of(&prepared);
        let back = decode(&encoded.body, encoded.trace.as_deref()).expect("decodes");
        assert_eq!(back.event, event);
        assert_eq!(back.trace, prepared.trace);
        assert_eq!(back.event.id(), "e-1");
        assert!(encoded.size() > encoded.body.len() as u64);
    }
}
