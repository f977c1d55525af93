//! [`Attributes`] for a CloudEvent in the JSON event format: attributes and
//! extensions are the top-level members, except `data` and `data_base64`
//! which carry the payload.
//!
//! JSON strings are lent to the evaluator without copying. Numbers that fit
//! a 32-bit signed integer become Integers, booleans Booleans; any other
//! value (a fractional or out-of-range number, an object, an array) is
//! rendered as its JSON text, since spec 3.2 represents a value outside the
//! three CESQL types as a String. `null` counts as absent.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use super::Attributes;
use super::value::ValueRef;

/// Members of a JSON-format event that are not context attributes.
const PAYLOAD_MEMBERS: [&str; 2] = ["data", "data_base64"];

impl Attributes for Map<String, Json> {
    fn attribute(&self, name: &str) -> Option<ValueRef<'_>> {
        if PAYLOAD_MEMBERS.contains(&name) {
            return None;
        }
        match self.get(name)? {
            Json::Null => None,
            Json::String(s) => Some(ValueRef::String(Cow::Borrowed(s))),
            Json::Bool(b) => Some(ValueRef::Boolean(*b)),
            Json::Number(n) => Some(n.as_i64().and_then(|i| i32::try_from(i).ok()).map_or_else(
                || ValueRef::String(Cow::Owned(n.to_string())),
                ValueRef::Integer,
            )),
            other @ (Json::Array(_) | Json::Object(_)) => {
                Some(ValueRef::String(Cow::Owned(other.to_string())))
            }
        }
    }

    fn has_attribute(&self, name: &str) -> bool {
        !PAYLOAD_MEMBERS.contains(&name) && self.get(name).is_some_and(|v| !v.is_null())
    }
}

/// A JSON value that is not an object has no attributes.
impl Attributes for Json {
    fn attribute(&self, name: &str) -> Option<ValueRef<'_>> {
        self.as_object()?.attribute(name)
    }

    fn has_attribute(&self, name: &str) -> bool {
        self.as_object().is_some_and(|o| o.has_attribute(name))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn maps_json_members_to_cesql_values() {
        let event = json!({
            "specversion": "1.0",
            "id": "1",
            "myint": 10,
            "mybool": false,
            "big": 4_000_000_000_i64,
            "ratio": 0.5,
            "list": [1, "a"],
            "nothing": null,
            "data": {"x": 1},
            "data_base64": "AA==",
        });
        let get = |name| event.attribute(name);
        assert!(matches!(
            get("id"),
            Some(ValueRef::String(Cow::Borrowed("1")))
        ));
        assert_eq!(get("myint"), Some(ValueRef::Integer(10)));
        assert_eq!(get("mybool"), Some(ValueRef::Boolean(false)));
        assert_eq!(get("big"), Some(ValueRef::from("4000000000".to_owned())));
        assert_eq!(get("ratio"), Some(ValueRef::from("0.5".to_owned())));
        assert_eq!(get("list"), Some(ValueRef::from(r#"[1,"a"]"#.to_owned())));
        for absent in ["nothing", "data", "data_base64", "missing"] {
            assert_eq!(get(absent), None, "{absent}");
            assert!(!event.has_attribute(absent), "{absent}");
        }
        assert!(event.has_attribute("mybool"));
        assert_eq!(json!("not an event").attribute("id"), None);
    }
}
