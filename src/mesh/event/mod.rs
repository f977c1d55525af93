//! CloudEvents on the wire (HTTP protocol binding 1.0.2): reading binary,
//! structured and batched requests into the SDK's `Event`, Kyma's legacy v1 JSON,
//! and writing an event back out in binary or structured mode. Limits on body
//! size are the caller's (the ingress reads bodies with a limit).

mod binary;
mod error;
pub mod hop;
mod legacy;
mod structured;

pub use binary::{binary_headers, read_binary};
pub use error::EventError;
pub use legacy::{LegacyError, read_legacy};
pub use structured::{
    BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE, read_batch, read_structured, write_structured,
};

pub use cloudevents::{
    AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10,
};

/// How a request carries its events, by its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Structured,
    Batched,
}

pub fn mode_of(content_type: Option<&str>) -> Mode {
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type == BATCH_CONTENT_TYPE {
        Mode::Batched
    } else if media_type.starts_with("application/cloudevents") {
        Mode::Structured
    } else {
        Mode::Binary
    }
}

/// The body of an event's data as bytes, as a binary-mode request carries it.
pub fn data_bytes(event: &Event) -> Vec<u8> {
    match event.data() {
        None => Vec::new(),
        Some(Data::Binary(bytes)) => bytes.clone(),
        Some(Data::String(text)) => text.clone().into_bytes(),
        Some(Data::Json(value)) => json_bytes(value),
    }
}

/// Event data held as JSON, as bytes. Serializing a `serde_json::Value` does
/// not fail (its keys are strings); were it ever to, the event would go out
/// without its data, so that is logged, never silent.
fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|error| {
        tracing::error!(%error, "event data held as JSON did not serialize; the event goes out without it");
        Vec::new()
    })
}

/// The `time` attribute as RFC 3339 in UTC with `Z`, as senders usually write it.
pub fn time_text(event: &Event) -> Option<String> {
    event
        .time()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}

/// CloudEvents attribute and extension names: lower-case ASCII letters and digits.
pub fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Required attributes must not be empty (the SDK accepts "").
fn check_required(event: &Event) -> Result<(), EventError> {
    for (name, value) in [
        ("id", event.id()),
        ("source", event.source().as_str()),
        ("type", event.ty()),
    ] {
        if value.is_empty() {
            return Err(EventError::new(format!(
                "attribute {name} must not be empty"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_content_type() {
        assert_eq!(
            mode_of(Some("application/cloudevents+json; charset=utf-8")),
            Mode::Structured
        );
        assert_eq!(
            mode_of(Some("application/cloudevents-batch+json")),
            Mode::Batched
        );
        assert_eq!(mode_of(Some("application/json")), Mode::Binary);
        assert_eq!(mode_of(None), Mode::Binary);
    }
}
