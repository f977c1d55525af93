//! An accepted event, shared by every subscriber it goes to, with its wire forms
//! (headers and body, `Prefer: reply` included) rendered at most once however
//! many subscribers receive it.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use cloudevents::Event;

use super::hop::TraceContext;
use super::{STRUCTURED_CONTENT_TYPE, binary_headers, data_bytes, write_structured};

/// Named once: a header map given a name as text makes the name anew each time.
/// `Prefer: reply` goes with every delivery to a subscriber (Knative: Brokers
/// and Channels MUST send it there).
pub const PREFER: HeaderName = HeaderName::from_static("prefer");

/// A request as sent to a subscriber.
pub struct Wire {
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct PreparedEvent {
    pub event: Event,
    /// The data exactly as it arrived in a binary-mode request, so it is sent on
    /// without another copy.
    raw_data: Option<Bytes>,
    /// The trace the request that carried the event belongs to; every delivery
    /// of the event (and of its replies) continues it.
    pub trace: Option<TraceContext>,
    binary: OnceLock<Wire>,
    structured: OnceLock<Wire>,
    /// The structured-mode body alone: what the event log stores, without
    /// the headers a delivery needs.
    structured_body: OnceLock<Bytes>,
}

impl PreparedEvent {
    pub fn new(event: Event) -> Self {
        Self::with_raw_data(event, None)
    }

    pub fn with_raw_data(event: Event, raw_data: Option<Bytes>) -> Self {
        Self {
            event,
            raw_data,
            trace: None,
            binary: OnceLock::new(),
            structured: OnceLock::new(),
            structured_body: OnceLock::new(),
        }
    }

    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    pub fn event_id(&self) -> &str {
        cloudevents::AttributesReader::id(&self.event)
    }

    /// Binary mode, or structured mode when `structured`.
    pub fn wire(&self, structured: bool) -> &Wire {
        if structured {
            self.structured.get_or_init(|| {
                let mut headers = HeaderMap::with_capacity(2);
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(STRUCTURED_CONTENT_TYPE),
                );
                headers.insert(PREFER, HeaderValue::from_static("reply"));
                self.add_trace(&mut headers);
                Wire {
                    headers,
                    body: self.structured_body().clone(),
                }
            })
        } else {
            self.binary.get_or_init(|| {
                let mut headers = binary_headers(&self.event);
                headers.insert(PREFER, HeaderValue::from_static("reply"));
                self.add_trace(&mut headers);
                let body = self
                    .raw_data
                    .clone()
                    .unwrap_or_else(|| Bytes::from(data_bytes(&self.event)));
                Wire { headers, body }
            })
        }
    }

    /// The event as a structured-mode body, rendered once.
    pub fn structured_body(&self) -> &Bytes {
        self.structured_body
            .get_or_init(|| write_structured(&self.event))
    }

    fn add_trace(&self, headers: &mut HeaderMap) {
        if let Some(trace) = &self.trace {
            trace.apply(headers);
        }
    }
}
