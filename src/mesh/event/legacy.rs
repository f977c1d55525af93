//! Kyma's legacy event API (`POST /{application}/v1/events`): a JSON body with
//! `event-type`, `event-type-version`, `event-id` (optional), `event-time` and
//! `data`, validated as Kyma validated it and converted to a CloudEvent whose
//! source is the Application and whose extension `eventtypeversion` keeps the version.

use cloudevents::{Data, Event, EventBuilder, EventBuilderV10};
use serde::Serialize;
use serde_json::Value;

/// Kyma's error body: `{"status","type","message","moreInfo","details":[...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct LegacyError {
    pub status: u16,
    #[serde(rename = "type")]
    pub type_: String,
    pub message: String,
    #[serde(rename = "moreInfo")]
    pub more_info: String,
    pub details: Vec<LegacyErrorDetail>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LegacyErrorDetail {
    pub field: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub message: String,
}

impl LegacyError {
    fn field(field: &str, kind: &str, message: &str) -> Self {
        Self {
            status: 400,
            type_: "Bad Request".into(),
            message: message.into(),
            more_info: String::new(),
            details: vec![LegacyErrorDetail {
                field: field.into(),
                type_: kind.into(),
                message: message.into(),
            }],
        }
    }

    /// `data` that does not match the event type's schema: Kyma's fixed
    /// words, and in `moreInfo` what is wrong and where.
    pub fn data(why: &str) -> Self {
        Self {
            more_info: why.into(),
            ..Self::field("data", "invalid_field", "Invalid field")
        }
    }

    pub fn body(message: &str) -> Self {
        Self {
            status: 400,
            type_: "Bad Request".into(),
            message: message.into(),
            more_info: String::new(),
            details: Vec::new(),
        }
    }
}

fn required_text<'a>(body: &'a Value, field: &str) -> Result<&'a str, LegacyError> {
    match body.get(field) {
        None | Some(Value::Null) => {
            Err(LegacyError::field(field, "missing_field", "Missing field"))
        }
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(LegacyError::field(field, "invalid_field", "Invalid field")),
    }
}

/// `^[a-zA-Z]+([_\-\.]?[a-zA-Z0-9]+)*$`, Kyma's event-type rule.
fn is_event_type(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    let mut previous_separator = false;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(b, b'_' | b'-' | b'.') {
            if previous_separator || i == bytes.len() - 1 {
                return false;
            }
            previous_separator = true;
        } else if b.is_ascii_alphanumeric() {
            previous_separator = false;
        } else {
            return false;
        }
    }
    true
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `data`'s JSON text exactly as sent: the event carries it byte for byte.
fn raw_data(body: &[u8]) -> Result<Vec<u8>, LegacyError> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
    }
    let raw: Raw =
        serde_json::from_slice(body).map_err(|_| LegacyError::body("Invalid JSON body"))?;
    Ok(raw.data.get().as_bytes().to_vec())
}

/// Validates and converts; `new_id` supplies an id when the body has none.
pub fn read_legacy(
    body: &[u8],
    application: &str,
    new_id: impl FnOnce() -> String,
) -> Result<Event, LegacyError> {
    let raw = body;
    let body: Value =
        serde_json::from_slice(body).map_err(|_| LegacyError::body("Invalid JSON body"))?;
    if !body.is_object() {
        return Err(LegacyError::body("Invalid JSON body"));
    }
    let event_type = required_text(&body, "event-type")?;
    if !is_event_type(event_type) {
        return Err(LegacyError::field(
            "event-type",
            "invalid_field",
            "Invalid field",
        ));
    }
    let version = required_text(&body, "event-type-version")?;
    if !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(LegacyError::field(
            "event-type-version",
            "invalid_field",
            "Invalid field",
        ));
    }
    let time = required_text(&body, "event-time")?;
    let id = match body.get("event-id") {
        None | Some(Value::Null) => new_id(),
        Some(Value::String(id)) if is_uuid(id) => id.clone(),
        Some(_) => {
            return Err(LegacyError::field(
                "event-id",
                "invalid_field",
                "Invalid field",
            ));
        }
    };
    let data = match body.get("data") {
        None | Some(Value::Null) => {
            return Err(LegacyError::field("data", "missing_field", "Missing field"));
        }
        Some(_) => raw_data(raw)?,
    };
    EventBuilderV10::new()
        .id(id)
        .source(application)
        .ty(event_type)
        .time(time)
        .extension("eventtypeversion", version)
        .data("application/json", Data::Binary(data))
        .build()
        .map_err(|_| LegacyError::field("event-time", "invalid_field", "Invalid field"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::AttributesReader;

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).expect("json")
    }

    #[test]
    fn a_valid_legacy_event_becomes_a_cloudevent() {
        let input = body(serde_json::json!({
            "event-type": "order.created", "event-type-version": "v1",
            "event-time": "2026-11-28T10:00:00Z", "data": {"orderId": "1"}
        }));
        let event = read_legacy(&input, "commerce", || "generated".into()).expect("valid");
        assert_eq!(event.ty(), "order.created");
        assert_eq!(event.source().as_str(), "commerce");
        assert_eq!(event.id(), "generated");
        assert_eq!(
            event.extension("eventtypeversion").map(|v| v.to_string()),
            Some("v1".to_string())
        );
    }

    #[test]
    fn kyma_rules_name_the_field() {
        let cases = [
            (
                serde_json::json!({"event-type-version": "v1", "event-time": "2026-11-28T10:00:00Z", "data": 1}),
                "event-type",
            ),
            (
                serde_json::json!({"event-type": "a..b", "event-type-version": "v1", "event-time": "2026-11-28T10:00:00Z", "data": 1}),
                "event-type",
            ),
            (
                serde_json::json!({"event-type": "a", "event-type-version": "v.1", "event-time": "2026-11-28T10:00:00Z", "data": 1}),
                "event-type-version",
            ),
            (
                serde_json::json!({"event-type": "a", "event-type-version": "v1", "event-time": "noon", "data": 1}),
                "event-time",
            ),
            (
                serde_json::json!({"event-type": "a", "event-type-version": "v1", "event-time": "2026-11-28T10:00:00Z"}),
                "data",
            ),
            (
                serde_json::json!({"event-type": "a", "event-type-version": "v1", "event-time": "2026-11-28T10:00:00Z", "data": 1, "event-id": "x"}),
                "event-id",
            ),
        ];
        for (input, field) in cases {
            let error =
                read_legacy(&body(input.clone()), "app", || "id".into()).expect_err("invalid");
            assert_eq!(error.details[0].field, field, "{input}");
        }
    }
}
