//! What travels with an event from hop to hop besides its own attributes: the
//! `knativearrivaltime` extension a Broker stamps when the event arrives, and the
//! W3C trace context (`traceparent`, `tracestate`) of the request that carried it,
//! passed on to every delivery so a tracing system sees one trace end to end.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use cloudevents::Event;
use cloudevents::event::ExtensionValue;

pub const ARRIVAL_TIME: &str = "knativearrivaltime";

// Named once: a header map given a name as text makes the name anew each time.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// When the events of one request arrived, rendered once for all of them.
pub fn arrival_now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Sets `knativearrivaltime`; an arrival stamped by an earlier hop is replaced,
/// as a Knative Broker's ingress does.
pub fn stamp_arrival(event: &mut Event, at: &str) {
    event.set_extension(ARRIVAL_TIME, ExtensionValue::String(at.to_string()));
}

/// `traceparent` and `tracestate` as a request carried them.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceContext {
    traceparent: HeaderValue,
    tracestate: Option<HeaderValue>,
}

/// A longer `tracestate` is not passed on: it would be carried beside every
/// delivery's `ce-` headers, which binary mode fills up to 60 KiB of the 64
/// KiB an ingress takes. W3C Trace Context asks that at least 512
/// characters be passed on, and lets longer ones be cut.
const MOST_TRACESTATE_BYTES: usize = 2048;

impl TraceContext {
    /// The request's trace context, when its `traceparent` is well formed
    /// (`version-traceid-parentid-flags`, lower-case hex); a malformed one is
    /// dropped as the W3C recommendation says, and `tracestate` with it; a
    /// `tracestate` over `MOST_TRACESTATE_BYTES` is dropped alone.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let traceparent = headers.get("traceparent")?;
        if !is_traceparent(traceparent.as_bytes()) {
            return None;
        }
        Some(Self {
            traceparent: traceparent.clone(),
            tracestate: headers
                .get("tracestate")
                .filter(|state| state.len() <= MOST_TRACESTATE_BYTES)
                .cloned(),
        })
    }

    /// As one line to keep beside a stored event: `traceparent`, then
    /// `tracestate` after a newline (which no header value holds).
    pub fn stored(&self) -> String {
        let mut text = String::from_utf8_lossy(self.traceparent.as_bytes()).into_owned();
        if let Some(state) = self.tracestate.as_ref().and_then(|s| s.to_str().ok()) {
            text.push('\n');
            text.push_str(state);
        }
        text
    }

    /// What `stored` wrote, checked again as if it had just arrived.
    pub fn from_stored(text: &str) -> Option<Self> {
        let (parent, state) = match text.split_once('\n') {
            Some((parent, state)) => (parent, Some(state)),
            None => (text, None),
        };
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_str(parent).ok()?);
        if let Some(state) = state.and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert(TRACESTATE, state);
        }
        Self::of(&headers)
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent.clone());
        if let Some(tracestate) = &self.tracestate {
            headers.insert(TRACESTATE, tracestate.clone());
        }
    }
}

fn is_traceparent(value: &[u8]) -> bool {
    let hex = |part: &[u8], len: usize| {
        part.len() == len
            && part
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let parts: Vec<&[u8]> = value.split(|b| *b == b'-').collect();
    match parts.as_slice() {
        [version, trace, parent, flags, ..] => {
            hex(version, 2)
                && version != b"ff"
                && (parts.len() == 4 || version != b"00")
                && hex(trace, 32)
                && trace.iter().any(|b| *b != b'0')
                && hex(parent, 16)
                && parent.iter().any(|b| *b != b'0')
                && hex(flags, 2)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracestate_too_long_to_carry_beside_an_event_is_dropped_alone() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (length, kept) in [
            (MOST_TRACESTATE_BYTES, true),
            (MOST_TRACESTATE_BYTES + 1, false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_static(parent));
            let state = format!("v={}", "x".repeat(length - 2));
            headers.insert(
                "tracestate",
                HeaderValue::from_str(&state).expect("a header value"),
            );
            let context = TraceContext::of(&headers).expect("the traceparent is kept");
            let mut out = HeaderMap::new();
            context.apply(&mut out);
            assert_eq!(out.contains_key("tracestate"), kept, "{length} bytes");
        }
    }

    #[test]
    fn only_well_formed_traceparents_are_passed_on() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (value, ok) in [
            (good, true),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                false,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                false,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
                true,
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_static(value));
            headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
            let context = TraceContext::of(&headers);
            assert_eq!(context.is_some(), ok, "{value}");
            if let Some(context) = context {
                let mut out = HeaderMap::new();
                context.apply(&mut out);
                assert_eq!(out["traceparent"], value);
                assert_eq!(out["tracestate"], "vendor=1");
            }
        }
    }
}
