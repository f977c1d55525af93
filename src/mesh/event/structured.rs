//! Structured mode (`application/cloudevents+json`: the whole event as one JSON
//! object) and batched mode (`application/cloudevents-batch+json`: an array).

use bytes::Bytes;
use cloudevents::{AttributesReader, Data, Event};

use super::{EventError, check_required};

pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

pub fn read_structured(body: &[u8]) -> Result<Event, EventError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| EventError::new(format!("the body is not JSON: {e}")))?;
    from_value(value, "")
}

pub fn read_batch(body: &[u8]) -> Result<Vec<Event>, EventError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| EventError::new(format!("the body is not JSON: {e}")))?;
    let serde_json::Value::Array(items) = value else {
        return Err(EventError::new("a batch is a JSON array of events"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| from_value(item, &format!("event [{i}]: ")))
        .collect()
}

fn from_value(value: serde_json::Value, context: &str) -> Result<Event, EventError> {
    if !value.is_object() {
        return Err(EventError::new(format!(
            "{context}an event is a JSON object"
        )));
    }
    match value.get("specversion").and_then(|v| v.as_str()) {
        Some("1.0") => {}
        Some(other) => {
            return Err(EventError::new(format!(
                "{context}specversion {other:?} is not supported; send 1.0"
            )));
        }
        None => {
            return Err(EventError::new(format!(
                "{context}attribute specversion is missing"
            )));
        }
    }
    let event: Event =
        serde_json::from_value(value).map_err(|e| EventError::new(format!("{context}{e}")))?;
    check_required(&event).map_err(|e| EventError::new(format!("{context}{}", e.message)))?;
    Ok(event)
}

/// The event as one JSON object, for subscribers that ask for structured mode.
/// JSON data that arrived as bytes (binary mode) is written as `data`, not as
/// `data_base64`, so it reads the same as it was sent.
pub fn write_structured(event: &Event) -> Bytes {
    let json_bytes = match event.data() {
        Some(Data::Binary(bytes)) if event.datacontenttype().is_some_and(is_json) => {
            serde_json::from_slice::<serde_json::Value>(bytes).ok()
        }
        _ => None,
    };
    let encoded = match json_bytes {
        Some(value) => {
            let mut copy = event.clone();
            copy.set_data_unchecked(Data::Json(value));
            serde_json::to_vec(&copy)
        }
        None => serde_json::to_vec(event),
    };
    Bytes::from(encoded.unwrap_or_default())
}

fn is_json(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type == "application/json" || media_type == "text/json" || media_type.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_events_are_read_with_their_data() {
        let body = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":1},"ext":"x"}"#;
        let event = read_structured(body).expect("valid");
        assert_eq!(event.ty(), "t");
        assert_eq!(
            event.extension("ext").map(|v| v.to_string()),
            Some("x".to_string())
        );
        let again = read_structured(&write_structured(&event)).expect("round trip");
        assert_eq!(again, event);
    }

    #[test]
    fn json_bytes_are_written_as_data() {
        use cloudevents::EventBuilder;
        let event = cloudevents::EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .data("application/json", Data::Binary(br#"{"a": 1}"#.to_vec()))
            .build()
            .expect("event");
        let written: serde_json::Value =
            serde_json::from_slice(&write_structured(&event)).expect("json");
        assert_eq!(written["data"], serde_json::json!({"a": 1}));
        assert!(written.get("data_base64").is_none());
    }

    #[test]
    fn batches_name_the_failing_event() {
        let body = br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s"}]"#;
        let error = read_batch(body).expect_err("second lacks type");
        assert!(error.message.starts_with("event [1]"), "{error}");
        assert!(read_batch(b"{}").is_err());
        assert_eq!(read_batch(b"[]").expect("empty batch").len(), 0);
    }

    #[test]
    fn bad_structured_events_are_refused() {
        assert!(read_structured(b"not json").is_err());
        assert!(
            read_structured(br#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#).is_err()
        );
        assert!(
            read_structured(br#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#).is_err()
        );
    }
}
