//! An accepted event, shared by every subscriber it goes to, with its wire forms
//! (headers and body, `Prefer: reply` included) rendered at most once however
//! many subscribers receive it.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::header::{ACCEPT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use cloudevents::{Data, Event};

use super::hop::TraceContext;
use super::{STRUCTURED_CONTENT_TYPE, binary_headers, data_bytes, fits_binary, write_structured};

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
    weight: OnceLock<usize>,
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
            weight: OnceLock::new(),
        }
    }

    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    pub fn event_id(&self) -> &str {
        cloudevents::AttributesReader::id(&self.event)
    }

    /// Binary mode, or structured mode when `structured`. An event binary
    /// mode cannot carry (see `fits_binary`) goes in structured mode either
    /// way: decided once, when its binary form would be rendered.
    pub fn wire(&self, structured: bool) -> &Wire {
        if structured {
            self.structured.get_or_init(|| self.structured_wire())
        } else {
            self.binary.get_or_init(|| {
                if !fits_binary(&self.event) {
                    return self.structured_wire();
                }
                let mut headers = binary_headers(&self.event);
                ask_as_a_delivery(&mut headers);
                self.add_trace(&mut headers);
                let body = self
                    .raw_data
                    .clone()
                    .unwrap_or_else(|| Bytes::from(data_bytes(&self.event)));
                Wire { headers, body }
            })
        }
    }

    fn structured_wire(&self) -> Wire {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(STRUCTURED_CONTENT_TYPE),
        );
        ask_as_a_delivery(&mut headers);
        self.add_trace(&mut headers);
        Wire {
            headers,
            body: self.structured_body().clone(),
        }
    }

    /// The event as a structured-mode body, rendered once.
    pub fn structured_body(&self) -> &Bytes {
        self.structured_body
            .get_or_init(|| write_structured(&self.event))
    }

    /// About the memory the event holds: its attributes' values, its data as
    /// parsed, the body it arrived in, and its rendered forms — those made so
    /// far, or else the one a delivery will make (one that can send the body
    /// it arrived in, or the stored one, makes none). Counted without
    /// rendering anything, once: a binary-mode event of 1 MiB stored by the
    /// event log holds about 3.3 MiB (parsed, arrived, stored in base64).
    pub fn weight(&self) -> usize {
        *self.weight.get_or_init(|| {
            let parsed = match self.event.data() {
                Some(Data::Binary(bytes)) => bytes.len(),
                Some(Data::String(text)) => text.len(),
                Some(Data::Json(value)) => {
                    let mut counter = Counter(0);
                    // Writing to a counter cannot fail.
                    let _ = serde_json::to_writer(&mut counter, value);
                    counter.0
                }
                None => 0,
            };
            let arrived = self.raw_data.as_ref().map_or(0, Bytes::len);
            let stored = self.structured_body.get().map_or(0, Bytes::len);
            let to_render = match arrived + stored {
                0 => parsed,
                _ => 0,
            };
            let attributes: usize = self
                .event
                .iter()
                .map(|(name, value)| {
                    let mut counter = Counter(0);
                    let _ = write!(counter, "{value}");
                    name.len() + counter.0
                })
                .sum();
            attributes + parsed + arrived + stored + to_render
        })
    }

    fn add_trace(&self, headers: &mut HeaderMap) {
        if let Some(trace) = &self.trace {
            trace.apply(headers);
        }
    }
}

/// Counts what is written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for Counter {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0 += text.len();
        Ok(())
    }
}

/// What a delivery asks of its receiver besides the event: a reply may come
/// in the answer (`Prefer: reply`, Knative's data plane), and uncompressed
/// (`Accept-Encoding: identity`): a reply in a content coding is refused, as
/// at ingress, and a request without the header says any coding will do.
fn ask_as_a_delivery(headers: &mut HeaderMap) {
    headers.insert(PREFER, HeaderValue::from_static("reply"));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
}

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV10};

    use super::*;

    fn event(data: Option<Data>) -> Event {
        let builder = EventBuilderV10::new().id("1").ty("t").source("s");
        match data {
            Some(Data::Binary(bytes)) => builder.data("application/octet-stream", bytes),
            Some(Data::Json(value)) => builder.data("application/json", value),
            Some(Data::String(text)) => builder.data("text/plain", text),
            None => builder,
        }
        .build()
        .expect("a valid event")
    }

    #[test]
    fn an_events_weight_counts_each_copy_of_its_data() {
        // specversion 1.0, id 1, type t, source s.
        let bare = PreparedEvent::new(event(None)).weight();
        assert_eq!(bare, "specversion1.0id1typetsources".len());
        let binary_type = "datacontenttypeapplication/octet-stream".len();
        // Parsed, and the body a delivery will render from it.
        let read = PreparedEvent::new(event(Some(Data::Binary(vec![0; 5000]))));
        assert_eq!(read.weight(), bare + binary_type + 2 * 5000);
        // Parsed, and the body it arrived in, which a delivery sends as it is.
        let arrived = PreparedEvent::with_raw_data(
            event(Some(Data::Binary(vec![0; 700]))),
            Some(Bytes::from(vec![0; 700])),
        );
        assert_eq!(arrived.weight(), bare + binary_type + 2 * 700);
        // Parsed, arrived, and stored (in base64) by the event log.
        let stored = PreparedEvent::with_raw_data(
            event(Some(Data::Binary(vec![0; 3000]))),
            Some(Bytes::from(vec![0; 3000])),
        );
        let stored_len = stored.structured_body().len();
        assert!(stored_len > 4000, "base64: {stored_len}");
        assert_eq!(stored.weight(), bare + binary_type + 6000 + stored_len);
        let json = serde_json::json!({"text": "x".repeat(3000)});
        let json = PreparedEvent::new(event(Some(Data::Json(json)))).weight();
        assert_eq!(
            json,
            bare + "datacontenttypeapplication/json".len() + 2 * 3011
        );
        let text = PreparedEvent::new(event(Some(Data::String("é".repeat(10))))).weight();
        assert_eq!(text, bare + "datacontenttypetext/plain".len() + 2 * 20);
    }

    /// One an earlier version logged with 33,000 extensions panicked the
    /// delivery that rendered its binary headers; it goes in structured mode.
    #[test]
    fn an_event_with_more_attributes_than_a_header_map_holds_goes_structured() {
        let mut huge = event(None);
        for i in 0..33_000 {
            huge.set_extension(&format!("x{i}"), "v");
        }
        let prepared = PreparedEvent::new(huge);
        let wire = prepared.wire(false);
        assert_eq!(
            wire.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
            Some(STRUCTURED_CONTENT_TYPE.as_bytes())
        );
        assert!(wire.body.starts_with(b"{"));
        let small = PreparedEvent::new(event(None));
        assert!(small.wire(false).headers.contains_key("ce-id"));
    }
}
