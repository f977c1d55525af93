//! An event's attributes and data as the wire needs them: the data as bytes, the
//! time as RFC 3339, and the required attributes checked non-empty.

use cloudevents::event::ExtensionValue;
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
/// a URI-reference, `subject`, when present, not empty, and no String
/// attribute may hold what CloudEvents 1.0.2 disallows in one (see
/// `check_string`).
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
    let strings = [
        ("id", Some(event.id())),
        ("type", Some(event.ty())),
        ("subject", event.subject()),
        ("datacontenttype", event.datacontenttype()),
    ];
    for (name, value) in strings {
        if let Some(value) = value {
            check_string(name, value)?;
        }
    }
    for (name, value) in event.iter_extensions() {
        if let ExtensionValue::String(value) = value {
            check_string(name, value)?;
        }
    }
    Ok(())
}

/// CloudEvents' String type disallows control characters (U+0000–U+001F,
/// U+007F–U+009F) and Unicode noncharacters; a newline in an id would also
/// let a sender write lines of its own into every log that names the event.
/// (Rust strings hold no unpaired surrogates.)
fn check_string(name: &str, value: &str) -> Result<(), EventError> {
    let disallowed = |c: char| {
        let code = u32::from(c);
        c.is_control() || (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
    };
    match value.chars().find(|c| disallowed(*c)) {
        Some(c) => Err(EventError::new(format!(
            "attribute {name} holds U+{:04X}, which a CloudEvents String may not",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}
