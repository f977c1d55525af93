//! An event's attributes and data as the wire needs them: the data as bytes, the
//! time as RFC 3339, and the required attributes checked non-empty.

use cloudevents::{AttributesReader, Data, Event};

use super::EventError;

/// The body of an event's data as bytes, as a binary-mode request carries it.
pub fn data_bytes(event: &Event) -> Vec<u8> {
    match event.data() {
        None => Vec::new(),
        Some(Data::Binary(bytes)) => bytes.clone(),
        Some(Data::String(text)) => text.clone().into_bytes(),
        // Display writes the compact JSON serde_json::to_vec would, and cannot fail.
        Some(Data::Json(value)) => value.to_string().into_bytes(),
    }
}

/// The `time` attribute as RFC 3339 in UTC with `Z`, as senders usually write it.
pub fn time_text(event: &Event) -> Option<String> {
    event
        .time()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}

/// Required attributes must not be empty (the SDK accepts ""), `source` must be
/// a URI-reference and `subject`, when present, not empty (CloudEvents 1.0.2).
pub(super) fn check_required(event: &Event) -> Result<(), EventError> {
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
    if let Err(error) = fluent_uri::UriRef::parse(event.source().as_str()) {
        return Err(EventError::new(format!(
            "attribute source is not a URI-reference (RFC 3986): {error}"
        )));
    }
    if event.subject() == Some("") {
        return Err(EventError::new(
            "attribute subject must not be empty when present",
        ));
    }
    Ok(())
}
