//! Structured mode (`application/cloudevents+json`: the whole event as one JSON
//! object) and batched mode (`application/cloudevents-batch+json`: an array).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use base64::Engine;
use bytes::Bytes;
use cloudevents::event::AttributeValue;
use cloudevents::{AttributesReader, Data, Event};
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::EventError;
use super::binary::check_v03_encoding;
use super::fields::{check_dataschema, check_required, time_text};
use crate::resources::is_attribute_name;

pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

pub fn read_structured(body: &[u8]) -> Result<Event, EventError> {
    let Members(fields) = serde_json::from_slice(body).map_err(|e| {
        EventError::new(format!(
            "the body is not an event (a JSON object, each member once): {e}"
        ))
    })?;
    from_fields(fields, "")
}

pub fn read_batch(body: &[u8]) -> Result<Vec<Event>, EventError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|e| EventError::new(format!("a batch is a JSON array of events: {e}")))?;
    let mut first_version = None;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let context = format!("event [{i}]: ");
            let Members(fields) = serde_json::from_str(item.get()).map_err(|e| {
                EventError::new(format!(
                    "{context}an event is a JSON object, each member once: {e}"
                ))
            })?;
            // "All batched CloudEvents MUST have the same specversion" (the
            // HTTP binding); each is read as 1.0, so it is compared as sent
            // (as a string: `"1\u002e0"` is `"1.0"`).
            let version = fields.get("specversion").map(|raw| {
                serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().into())
            });
            match first_version {
                None => first_version = Some(version),
                Some(ref first) if *first != version => {
                    return Err(EventError::new(format!(
                        "{context}specversion {} differs from event [0]'s, {}: all the events of a batch must have the same",
                        version.as_deref().unwrap_or("(none)"),
                        first.as_deref().unwrap_or("(none)")
                    )));
                }
                Some(_) => {}
            }
            from_fields(fields, &context)
        })
        .collect()
}

/// An event's members with their JSON text as it arrived, so `data` can be kept
/// byte for byte instead of going through a parsed value (which would re-encode
/// numbers through f64 and reorder keys).
type Fields<'a> = BTreeMap<String, &'a RawValue>;

/// An event's members, each given once: a context attribute may appear in an
/// event at most once, and which of two a JSON reader keeps is a guess (as in
/// binary mode, where a `ce-` header given twice is refused).
struct Members<'a>(Fields<'a>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Once;
        impl<'de> Visitor<'de> for Once {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Fields::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    match fields.entry(name) {
                        Entry::Vacant(vacant) => {
                            vacant.insert(value);
                        }
                        Entry::Occupied(given) => {
                            return Err(A::Error::custom(format!(
                                "member {:?} is given more than once",
                                given.key()
                            )));
                        }
                    }
                }
                Ok(Members(fields))
            }
        }
        deserializer.deserialize_map(Once)
    }
}

fn from_fields(mut fields: Fields, context: &str) -> Result<Event, EventError> {
    let fail = |message: String| EventError::new(format!("{context}{message}"));
    let mut data = fields.remove("data");
    // "When decoding attributes and a `null` value is encountered, it MUST be
    // treated as the equivalent of unset" (the JSON format): `data_base64` is
    // read alike. `data: null` stays, an explicit null payload.
    let mut data_base64 = fields
        .remove("data_base64")
        .filter(|raw| raw.get().trim() != "null");
    let typed = TypedAttributes {
        time: fields.get("time").copied(),
        dataschema: fields
            .get("dataschema")
            .or_else(|| fields.get("schemaurl"))
            .copied(),
    };
    let mut attributes = serde_json::Map::with_capacity(fields.len());
    for (name, raw) in fields {
        if !is_attribute_name(&name) {
            return Err(fail(format!(
                "{name:?}: attribute names are lower-case letters and digits only"
            )));
        }
        // An Integer is "optionally prefixed with a minus sign": `-0` is one,
        // though a JSON reader takes it for the float −0.0.
        let value = match raw.get().trim() {
            "-0" => serde_json::Value::from(0),
            text => {
                serde_json::from_str(text).map_err(|e| fail(format!("attribute {name}: {e}")))?
            }
        };
        check_attribute_type(&name, &value).map_err(fail)?;
        if let ("dataschema" | "schemaurl", Some(schema)) = (name.as_str(), value.as_str()) {
            check_dataschema(schema).map_err(|e| fail(e.message))?;
        }
        attributes.insert(name, value);
    }
    match attributes.get("specversion").and_then(|v| v.as_str()) {
        Some("1.0") => {}
        Some("0.3") => {
            upgrade(&mut attributes, &mut data, &mut data_base64).map_err(fail)?;
        }
        Some(other) => {
            return Err(fail(format!(
                "specversion {other:?} is not supported; send 1.0 (or 0.3)"
            )));
        }
        None => return Err(fail("attribute specversion is missing".into())),
    }
    let mut event: Event = serde_json::from_value(serde_json::Value::Object(attributes))
        .map_err(|e| fail(name_the_attribute(&e, &typed)))?;
    check_required(&event).map_err(|e| fail(e.message))?;
    let data = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "an event carries data or data_base64, not both".into(),
            ));
        }
        // Without datacontenttype, `data` is JSON (the JSON format says so): kept
        // as its text, which tells it apart from bytes of no stated type. The
        // attribute itself is left unset, as the sender left it.
        (Some(raw), None) if event.datacontenttype().is_none() => {
            Some(Data::String(raw.get().to_string()))
        }
        (Some(raw), None) => Some(Data::Binary(data_of(&event, raw).map_err(fail)?)),
        (None, Some(raw)) => {
            let text: String = serde_json::from_str(raw.get())
                .map_err(|_| fail("data_base64 is not a string".into()))?;
            Some(Data::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| fail(format!("data_base64 is not base64: {e}")))?,
            ))
        }
        (None, None) => None,
    };
    if let Some(data) = data {
        event.set_data_unchecked(data);
    }
    Ok(event)
}

/// The attributes the SDK reads into types of its own (a time, a URL) as
/// they arrived, so that a refusal can name the one it could not read (its
/// error names none).
struct TypedAttributes<'a> {
    time: Option<&'a RawValue>,
    dataschema: Option<&'a RawValue>,
}

/// The SDK's error, with the attribute that fails on its own (the error
/// path only: each is read again in an event of its own).
fn name_the_attribute(error: &serde_json::Error, typed: &TypedAttributes) -> String {
    let alone = |name: &str, raw: &RawValue| {
        let event = format!(
            r#"{{"specversion":"1.0","id":"i","source":"s","type":"t","{name}":{}}}"#,
            raw.get()
        );
        serde_json::from_str::<Event>(&event).is_err()
    };
    let failing = [("time", typed.time), ("dataschema", typed.dataschema)]
        .into_iter()
        .find_map(|(name, raw)| raw.filter(|raw| alone(name, raw)).map(|_| name));
    match failing {
        Some(name) => format!("attribute {name}: {error}"),
        None => error.to_string(),
    }
}

/// A CloudEvents 0.3 event as 1.0 names it: `schemaurl` is `dataschema`, and
/// `data` under `datacontentencoding: base64` is what 1.0 calls `data_base64`.
fn upgrade<'a>(
    attributes: &mut serde_json::Map<String, serde_json::Value>,
    data: &mut Option<&'a RawValue>,
    data_base64: &mut Option<&'a RawValue>,
) -> Result<(), String> {
    attributes.insert("specversion".into(), "1.0".into());
    if let Some(schema) = attributes.remove("schemaurl") {
        attributes.insert("dataschema".into(), schema);
    }
    match attributes.remove("datacontentencoding") {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::String(encoding)) => {
            check_v03_encoding(&encoding)?;
            if data_base64.is_some() {
                return Err("data_base64 is not a CloudEvents 0.3 member".into());
            }
            *data_base64 = data.take();
            Ok(())
        }
        Some(other) => Err(format!("datacontentencoding {other} is not a string")),
    }
}

/// The CloudEvents type system in JSON: context attributes are strings;
/// an extension is a string, a boolean or an Integer, which is 32-bit.
/// Checked here so that a refusal names the attribute (the SDK's own error
/// names none), and so that an integer out of range is refused, not stored.
fn check_attribute_type(name: &str, value: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let kind = match value {
        // Unset, as if absent (the JSON format's rule); required ones are checked later.
        Value::Null | Value::String(_) => return Ok(()),
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => "an integer",
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            "an integer outside −2,147,483,648…2,147,483,647"
        }
        Value::Number(_) => "a number with a fraction or an exponent",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let context_attribute = matches!(
        name,
        "specversion"
            | "id"
            | "source"
            | "type"
            | "subject"
            | "time"
            | "dataschema"
            | "datacontenttype"
    );
    if context_attribute {
        return Err(format!("attribute {name} must be a string, not {kind}"));
    }
    if matches!(kind, "a boolean" | "an integer") {
        return Ok(());
    }
    Err(format!(
        "extension {name} must be a string, a boolean or an integer (32-bit), not {kind}"
    ))
}

/// `data` as bytes: JSON data exactly as its text arrived; a string under a
/// non-JSON content type is that string's contents.
fn data_of(event: &Event, raw: &RawValue) -> Result<Vec<u8>, String> {
    let text = raw.get();
    if event.datacontenttype().is_none_or(is_json) || !text.starts_with('"') {
        return Ok(text.as_bytes().to_vec());
    }
    let decoded: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(decoded.into_bytes())
}

/// The event as one JSON object, for subscribers that ask for structured mode.
/// Data under a JSON content type (or none) is written as `data` exactly as it
/// arrived; other text as a JSON string; anything else as `data_base64`.
pub fn write_structured(event: &Event) -> Bytes {
    let mut out = Vec::with_capacity(256 + data_len(event));
    out.push(b'{');
    let mut first = true;
    let mut member = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_string(out, name);
        out.push(b':');
    };
    for (name, value) in event.iter() {
        member(&mut out, name);
        match value {
            AttributeValue::Boolean(b) => {
                out.extend_from_slice(if *b { b"true" } else { b"false" })
            }
            AttributeValue::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
            AttributeValue::Time(_) => {
                write_json_string(&mut out, &time_text(event).unwrap_or_default())
            }
            other => write_json_string(&mut out, &other.to_string()),
        }
    }
    if let Some(data) = event.data() {
        let bytes: std::borrow::Cow<[u8]> = match data {
            Data::Binary(bytes) => bytes.into(),
            Data::String(text) => text.as_bytes().into(),
            // Display writes the compact JSON serde_json::to_vec would, infallibly.
            Data::Json(value) => value.to_string().into_bytes().into(),
        };
        // Bytes of no stated type stay data_base64: "the decoding MUST NOT make
        // an assumption of JSON-formatted data" (JSON format §3.1).
        let untyped_bytes = event.datacontenttype().is_none() && matches!(data, Data::Binary(_));
        let json_type = event.datacontenttype().is_none_or(is_json);
        // JSON text is UTF-8 (RFC 8259 §8.1), which serde_json does not check
        // inside strings it skips: `"caf\xe9"` would be copied in as invalid JSON.
        if !untyped_bytes
            && json_type
            && std::str::from_utf8(&bytes).is_ok()
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
        {
            member(&mut out, "data");
            out.extend_from_slice(&bytes);
        } else if let (false, Ok(text)) = (json_type, std::str::from_utf8(&bytes)) {
            member(&mut out, "data");
            write_json_string(&mut out, text);
        } else {
            member(&mut out, "data_base64");
            write_json_string(
                &mut out,
                &base64::engine::general_purpose::STANDARD.encode(&bytes),
            );
        }
    }
    out.push(b'}');
    Bytes::from(out)
}

fn data_len(event: &Event) -> usize {
    match event.data() {
        Some(Data::Binary(bytes)) => bytes.len(),
        Some(Data::String(text)) => text.len(),
        _ => 0,
    }
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Most text (a payload of kilobytes included) needs no escape: one scan
    // the compiler vectorises and one copy, instead of serde_json's
    // byte-by-byte escape loop (measured: about 0.5 µs an event of 1 KiB).
    if !needs_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// Whether JSON needs any of these bytes escaped. Chunks without an early
/// exit inside them, so each chunk is checked many bytes at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.chunks(64).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

fn is_json(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/json")
        || media_type.eq_ignore_ascii_case("text/json")
        || media_type.to_ascii_lowercase().ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::event::check_text;

    #[test]
    fn json_strings_are_written_as_serde_json_writes_them() {
        for text in [
            "",
            "plain text",
            &"x".repeat(4096),
            "a \"quote\"",
            "back\\slash",
            "line\nbreak and\ttab",
            "\u{0}\u{1f}\u{7f}",
            "ünïcödé ✓ 🦀",
        ] {
            let mut out = Vec::new();
            write_json_string(&mut out, text);
            let expected = serde_json::to_vec(text).expect("a str serialises");
            assert_eq!(out, expected, "{text:?}");
            let back: String = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(back, text);
        }
    }

    #[test]
    fn a_member_given_twice_is_refused_naming_it() {
        let head = r#""specversion":"1.0","source":"/s","type":"t""#;
        let twice = format!(r#"{{{head},"id":"1","id":"2"}}"#);
        let error = read_structured(twice.as_bytes()).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains(r#"member "id" is given more than once"#),
            "{error}"
        );
        let batch = format!(r#"[{{{head},"id":"1"}},{{{head},"id":"2","data":1,"data":2}}]"#);
        let error = read_batch(batch.as_bytes()).expect_err("refused");
        let error = error.to_string();
        assert!(error.starts_with("event [1]: "), "{error}");
        assert!(
            error.contains(r#"member "data" is given more than once"#),
            "{error}"
        );
        // Within data, JSON is data's own business.
        let nested = format!(r#"{{{head},"id":"1","data":{{"a":1,"a":2}}}}"#);
        assert!(read_structured(nested.as_bytes()).is_ok());
    }

    #[test]
    fn null_attributes_and_a_null_data_base64_are_unset() {
        let head = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
        let alone = read_structured(format!("{{{head},\"data_base64\":null}}").as_bytes())
            .expect("read as without data");
        assert_eq!(alone.data(), None);
        let beside = read_structured(
            format!("{{{head},\"data_base64\":null,\"data\":{{\"a\":1}}}}").as_bytes(),
        )
        .expect("read as data alone");
        assert_eq!(beside.data(), Some(&Data::String(r#"{"a":1}"#.into())));
        assert!(read_structured(format!("{{{head},\"data_base64\":1}}").as_bytes()).is_err());
        let unset = read_structured(
            format!("{{{head},\"subject\":null,\"time\":null,\"myext\":null}}").as_bytes(),
        )
        .expect("null attributes read as unset");
        assert_eq!(unset.subject(), None);
        assert_eq!(unset.time(), None);
        assert!(unset.extension("myext").is_none());
    }

    #[test]
    fn json_data_that_is_not_utf8_goes_as_data_base64() {
        use cloudevents::{EventBuilder, EventBuilderV10};
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .data("application/json", b"\"caf\xe9\"".to_vec())
            .build()
            .expect("an event");
        let body = write_structured(&event);
        let written: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(written["data_base64"], "ImNhZuki");
        assert!(written.get("data").is_none());
        let back = read_structured(&body).expect("reads back");
        assert_eq!(back.data(), event.data());
    }

    #[test]
    fn control_characters_read_back_but_are_refused_as_input() {
        for member in [
            r#""id":"a\u0000b""#,
            r#""id":"1","subject":"line\nforged""#,
            r#""id":"1","ext":"\u0085""#,
        ] {
            let body = format!(r#"{{"specversion":"1.0","source":"/s","type":"t",{member}}}"#);
            // Read back as stored (an earlier version took it), refused as input.
            let read = read_structured(body.as_bytes()).expect(member);
            let error = check_text(&read).expect_err(member);
            assert!(
                error.message.contains("holds U+"),
                "{member}: {}",
                error.message
            );
        }
    }

    #[test]
    fn attributes_of_the_wrong_type_are_refused_by_name() {
        let refusal = |member: &str| {
            let body =
                format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t",{member}}}"#);
            read_structured(body.as_bytes()).expect_err(member).message
        };
        assert_eq!(
            refusal(r#""subject":5"#),
            "attribute subject must be a string, not an integer"
        );
        assert!(refusal(r#""ext":1.5"#).starts_with("extension ext must be a string"));
        assert!(refusal(r#""ext":{}"#).ends_with("not an object"));
        assert!(refusal(r#""big":2147483648"#).contains("outside"));
        assert!(refusal(r#""big":-2147483649"#).contains("outside"));
        let body = br#"{"specversion":1.0,"id":"1","source":"/s","type":"t"}"#;
        assert_eq!(
            read_structured(body).expect_err("a number").message,
            "attribute specversion must be a string, not a number with a fraction or an exponent"
        );
        for fine in [
            r#""n":2147483647"#,
            r#""n":-2147483648"#,
            r#""b":true"#,
            r#""subject":null"#,
        ] {
            let body =
                format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t",{fine}}}"#);
            assert!(read_structured(body.as_bytes()).is_ok(), "{fine}");
        }
    }

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
    fn a_batchs_events_have_one_specversion() {
        let body = br#"[{"specversion":"1.0","id":"a","source":"/p","type":"t"},{"specversion":"0.3","id":"b","source":"/p","type":"t"}]"#;
        let error = read_batch(body).expect_err("mixed");
        assert!(
            error.message.starts_with("event [1]: specversion"),
            "{error}"
        );
        let same = br#"[{"specversion":"0.3","id":"a","source":"/p","type":"t"},{"specversion":"0.3","id":"b","source":"/p","type":"t"}]"#;
        assert_eq!(read_batch(same).expect("one version").len(), 2);
    }

    #[test]
    fn refusals_name_the_attribute_the_sdk_could_not_read() {
        let head = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
        for (member, named) in [
            (r#""time":"2020-13-01T00:00:00Z""#, "attribute time:"),
            (r#""time":"nope""#, "attribute time:"),
            (r#""dataschema":"rel""#, "attribute dataschema"),
            (r#""dataschema":"urn:x y""#, "attribute dataschema"),
            (r#""dataschema":"http://x/%zz""#, "attribute dataschema"),
            (r#""subject":"\uDEAD""#, "attribute subject:"),
        ] {
            let body = format!("{{{head},{member}}}");
            let error = read_structured(body.as_bytes()).expect_err(member);
            assert!(error.message.contains(named), "{member}: {error}");
        }
        let minus_zero = format!(r#"{{{head},"myint":-0}}"#);
        let event = read_structured(minus_zero.as_bytes()).expect("-0 is an Integer");
        assert_eq!(
            event.extension("myint").map(ToString::to_string),
            Some("0".to_string())
        );
        let schema = format!(r#"{{{head},"dataschema":"urn:example:schema"}}"#);
        assert!(read_structured(schema.as_bytes()).is_ok());
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
    fn untyped_base64_data_stays_untyped_and_json_data_stays_json() {
        let untyped = read_structured(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"eyJhIjoxfQ=="}"#,
        )
        .expect("valid");
        let written: serde_json::Value =
            serde_json::from_slice(&write_structured(&untyped)).expect("json");
        assert_eq!(
            written["data_base64"], "eyJhIjoxfQ==",
            "not turned into JSON"
        );
        assert!(written.get("data").is_none() && written.get("datacontenttype").is_none());
        let headers = super::super::binary::binary_headers(&untyped);
        assert!(headers.get("content-type").is_none(), "{headers:?}");

        let json = read_structured(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a": 1}}"#,
        )
        .expect("valid");
        let written: serde_json::Value =
            serde_json::from_slice(&write_structured(&json)).expect("json");
        assert_eq!(written["data"], serde_json::json!({"a": 1}));
        let headers = super::super::binary::binary_headers(&json);
        assert_eq!(headers["content-type"], "application/json");
        for event in [untyped, json] {
            let again = read_structured(&write_structured(&event)).expect("round trip");
            assert_eq!(again, event);
        }
    }

    #[test]
    fn attribute_names_source_and_subject_follow_the_spec() {
        for (body, names) in [
            (r#""My_Ext":"v""#, "My_Ext"),
            (r#""has space":"v""#, "has space"),
            (r#""subject":"""#, "subject"),
        ] {
            let text =
                format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t",{body}}}"#);
            let error = read_structured(text.as_bytes()).expect_err(body);
            assert!(error.message.contains(names), "{error}");
        }
        for source in ["a b", "http://[::1", "%zz"] {
            let text =
                format!(r#"{{"specversion":"1.0","id":"1","source":"{source}","type":"t"}}"#);
            let error = read_structured(text.as_bytes()).expect_err(source);
            assert!(error.message.contains("URI-reference"), "{error}");
        }
        for source in ["/s", "urn:event:1", "https://example.com/a?b#c", "commerce"] {
            let text =
                format!(r#"{{"specversion":"1.0","id":"1","source":"{source}","type":"t"}}"#);
            read_structured(text.as_bytes()).expect(source);
        }
    }

    #[test]
    fn a_0_3_event_is_read_as_1_0() {
        let event = read_structured(
            br#"{"specversion":"0.3","id":"1","source":"/s","type":"t","schemaurl":"http://example.com/s",
                "datacontenttype":"text/plain","datacontentencoding":"base64","data":"aGVsbG8="}"#,
        )
        .expect("a 0.3 event");
        assert_eq!(event.specversion(), cloudevents::event::SpecVersion::V10);
        assert_eq!(
            event.dataschema().map(|u| u.as_str()),
            Some("http://example.com/s")
        );
        assert_eq!(event.data(), Some(&Data::Binary(b"hello".to_vec())));
        assert!(event.extension("datacontentencoding").is_none());
        let plain = read_structured(
            br#"{"specversion":"0.3","id":"1","source":"/s","type":"t","data":{"a":1}}"#,
        )
        .expect("JSON data");
        assert_eq!(plain.specversion(), cloudevents::event::SpecVersion::V10);
    }

    #[test]
    fn bad_structured_events_are_refused() {
        assert!(read_structured(b"not json").is_err());
        assert!(
            read_structured(br#"{"specversion":"0.2","id":"1","source":"/s","type":"t"}"#).is_err()
        );
        for (encoding, named) in [("\"gzip\"", "CloudEvents 0.3 knows"), ("7", "not a string")] {
            let body = format!(
                r#"{{"specversion":"0.3","id":"1","source":"/s","type":"t","datacontentencoding":{encoding},"data":"x"}}"#
            );
            let error = read_structured(body.as_bytes()).expect_err(encoding);
            assert!(error.message.contains(named), "{encoding}: {error}");
        }
        assert!(
            read_structured(br#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#).is_err()
        );
    }
}
