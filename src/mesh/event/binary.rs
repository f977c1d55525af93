//! Binary mode: attributes in `ce-` headers (percent-decoded, as the HTTP binding
//! requires), `datacontenttype` in Content-Type, data as the body, byte for byte.

use std::borrow::Cow;
use std::io::Write;
use std::ops::Range;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use bytes::Bytes;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10};
use percent_encoding::{percent_decode, utf8_percent_encode};

use super::EventError;
use super::fields::{HEADER_VALUE, check_dataschema, check_required, time_text};
use crate::resources::is_attribute_name;

/// The event, and its data as the event holds it: the body itself, shared,
/// or what CloudEvents 0.3's `datacontentencoding` decoded from it — what a
/// delivery may send on without rendering the data again.
pub fn read_binary(headers: &HeaderMap, body: Bytes) -> Result<(Event, Bytes), EventError> {
    let mut builder = EventBuilderV10::new();
    let mut specversion = None;
    // CloudEvents 0.3's names for what 1.0 calls dataschema, and its encoding
    // of data; extensions like any other under 1.0.
    let (mut schemaurl, mut encoding) = (None, None);
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        if seen.contains(&attribute) {
            return Err(EventError::new(format!(
                "header ce-{attribute} is given more than once"
            )));
        }
        seen.push(attribute);
        let value = decode(attribute, value)?;
        builder = match attribute {
            "specversion" => {
                specversion = Some(value);
                builder
            }
            "id" => builder.id(value),
            "source" => builder.source(value),
            "type" => builder.ty(value),
            "subject" => builder.subject(value),
            "time" => builder.time(value),
            "schemaurl" => {
                schemaurl = Some(value);
                builder
            }
            "datacontentencoding" => {
                encoding = Some(value);
                builder
            }
            "datacontenttype" => {
                return Err(EventError::new(
                    "datacontenttype travels in the Content-Type header, not ce-datacontenttype",
                ));
            }
            "dataschema" | "data" | "data_base64" => {
                // dataschema must be set together with data (below); data is never a header.
                if attribute != "dataschema" {
                    return Err(EventError::new(format!(
                        "ce-{attribute} is not an attribute"
                    )));
                }
                builder
            }
            extension if is_attribute_name(extension) => builder.extension(extension, value),
            other => {
                return Err(EventError::new(format!(
                    "ce-{other}: attribute names are lower-case letters and digits only"
                )));
            }
        };
    }
    let legacy = match specversion.as_deref() {
        Some("1.0") => {
            for (name, value) in [
                ("schemaurl", schemaurl.take()),
                ("datacontentencoding", encoding.take()),
            ] {
                if let Some(value) = value {
                    builder = builder.extension(name, value);
                }
            }
            false
        }
        Some("0.3") => true,
        Some(other) => {
            return Err(EventError::new(format!(
                "specversion {other:?} is not supported; send 1.0 (or 0.3)"
            )));
        }
        None => return Err(EventError::new("header ce-specversion is missing")),
    };
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().map(str::to_string));
    let content_type = content_type
        .transpose()
        .map_err(|_| EventError::new("Content-Type is not ASCII"))?;
    let schema = match headers.get("ce-dataschema") {
        Some(value) if !legacy => Some(decode("dataschema", value)?),
        _ => schemaurl,
    };
    if let Some(schema) = &schema {
        check_dataschema(schema)?;
    }
    let body = match encoding {
        Some(encoding) => Bytes::from(decode_legacy_data(&encoding, &body)?),
        None => body,
    };
    let untyped = content_type.is_none();
    if !body.is_empty() || content_type.is_some() || schema.is_some() {
        // The builder takes data only with a content type; one the request did not
        // send is taken off again below: Content-Type *is* datacontenttype (HTTP
        // binding §3.1.1), and none means none, not JSON.
        let content_type = content_type.unwrap_or_default();
        let data = Data::Binary(body.to_vec());
        builder = match schema {
            Some(schema) => builder.data_with_schema(content_type, schema.as_str(), data),
            None => builder.data(content_type, data),
        };
    }
    let mut event = builder
        .build()
        .map_err(|e| EventError::new(e.to_string()))?;
    if untyped {
        event.set_datacontenttype(None::<String>);
    }
    check_required(&event)?;
    Ok((event, body))
}

/// CloudEvents 0.3's `datacontentencoding` knows one encoding: base64.
pub(super) fn check_v03_encoding(encoding: &str) -> Result<(), String> {
    if encoding.eq_ignore_ascii_case("base64") {
        Ok(())
    } else {
        Err(format!(
            "datacontentencoding {encoding:?} is not one CloudEvents 0.3 knows (base64)"
        ))
    }
}

/// A 0.3 event's data as sent with `datacontentencoding`.
fn decode_legacy_data(encoding: &str, data: &[u8]) -> Result<Vec<u8>, EventError> {
    check_v03_encoding(encoding).map_err(EventError::new)?;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| {
            EventError::new(format!(
                "data is not base64 as datacontentencoding says: {e}"
            ))
        })
}

fn decode(attribute: &str, value: &HeaderValue) -> Result<String, EventError> {
    let unquoted = unquote(value.as_bytes()).ok_or_else(|| {
        EventError::new(format!(
            "header ce-{attribute} opens a double-quoted string it does not close"
        ))
    })?;
    percent_decode(&unquoted)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| {
            EventError::new(format!(
                "header ce-{attribute} is not UTF-8 once percent-decoded"
            ))
        })
}

/// The value with its double-quoted strings unescaped (RFC 7230 §3.2.6), which
/// the HTTP binding requires before percent-decoding: older senders quoted values
/// instead of percent-encoding spaces and quotes. None when a quote is left open.
fn unquote(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !raw.contains(&b'"') {
        return Some(Cow::Borrowed(raw));
    }
    let mut unquoted = Vec::with_capacity(raw.len());
    let mut quoted = false;
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'"' => quoted = !quoted,
            b'\\' if quoted => unquoted.push(*bytes.next()?),
            _ => unquoted.push(byte),
        }
    }
    (!quoted).then_some(Cow::Owned(unquoted))
}

/// `ce-<name>`: a constant for the context attributes and the extensions every
/// event in the mesh carries, built for any other extension.
pub fn ce_header(name: &str) -> Option<HeaderName> {
    Some(match name {
        "specversion" => HeaderName::from_static("ce-specversion"),
        "id" => HeaderName::from_static("ce-id"),
        "source" => HeaderName::from_static("ce-source"),
        "type" => HeaderName::from_static("ce-type"),
        "subject" => HeaderName::from_static("ce-subject"),
        "time" => HeaderName::from_static("ce-time"),
        "dataschema" => HeaderName::from_static("ce-dataschema"),
        "knativebrokerttl" => HeaderName::from_static("ce-knativebrokerttl"),
        "knativearrivaltime" => HeaderName::from_static("ce-knativearrivaltime"),
        extension => HeaderName::from_bytes(format!("ce-{extension}").as_bytes()).ok()?,
    })
}

/// Header values written one after another into one buffer, each header
/// then a slice of it: a map built value by value cost an allocation per
/// value, and another per value when a delivery's copy of the map first
/// shared it.
struct Values {
    buffer: Vec<u8>,
    fields: Vec<(HeaderName, Range<usize>)>,
}

impl Values {
    fn put(&mut self, name: Option<HeaderName>, write: impl FnOnce(&mut Vec<u8>)) {
        if let Some(name) = name {
            let start = self.buffer.len();
            write(&mut self.buffer);
            self.fields.push((name, start..self.buffer.len()));
        }
    }

    /// A `ce-` value, percent-encoded where the binding says it must be.
    fn put_encoded(&mut self, attribute: &str, value: &str) {
        self.put(ce_header(attribute), |buffer| {
            for chunk in utf8_percent_encode(value, HEADER_VALUE) {
                buffer.extend_from_slice(chunk.as_bytes());
            }
        });
    }

    fn into_headers(self) -> HeaderMap {
        let shared = Bytes::from(self.buffer);
        let mut headers = HeaderMap::with_capacity(self.fields.len() + 4);
        for (name, range) in self.fields {
            if let Ok(value) = HeaderValue::from_maybe_shared(shared.slice(range)) {
                headers.insert(name, value);
            }
        }
        headers
    }
}

/// Binary mode carries an event whose attributes, each a `ce-` header, fit
/// what HTTP servers take: hyper, which serves our ingress and many
/// subscribers, takes at most 100 headers, and 90 attributes leave room for
/// the ones a delivery adds (Host, Content-Type, Content-Length, Prefer, the
/// trace context, a dead letter's `knativeerror*`); and the headers, as
/// binary mode writes them (percent-encoded), must fit in the 64 KiB our
/// ingress takes (`server::answers::MAX_HEADER_BYTES`) with room for the
/// others. An event past either goes in structured mode, which carries any.
const BINARY_MOST_ATTRIBUTES: usize = 90;
const BINARY_MOST_ATTRIBUTE_BYTES: usize = 60 * 1024;

/// Counts the bytes of what is written once percent-encoded for a header.
struct EncodedLength(usize);

impl std::fmt::Write for EncodedLength {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0 += utf8_percent_encode(text, HEADER_VALUE)
            .map(str::len)
            .sum::<usize>();
        Ok(())
    }
}

/// Whether binary mode can carry the event (see `BINARY_MOST_ATTRIBUTES`).
pub fn fits_binary(event: &Event) -> bool {
    use std::fmt::Write as _;
    let mut count = 0;
    let mut length = EncodedLength(0);
    for (name, value) in event.iter() {
        count += 1;
        length.0 += "ce-".len() + name.len();
        // Writing into a counter cannot fail.
        let _ = write!(length, "{value}");
        if count > BINARY_MOST_ATTRIBUTES || length.0 > BINARY_MOST_ATTRIBUTE_BYTES {
            return false;
        }
    }
    true
}

/// The headers of the event in binary mode (`ce-*` and Content-Type).
pub fn binary_headers(event: &Event) -> HeaderMap {
    let mut values = Values {
        buffer: Vec::with_capacity(256),
        fields: Vec::with_capacity(8 + event.iter_extensions().count()),
    };
    values.put(ce_header("specversion"), |b| b.extend_from_slice(b"1.0"));
    values.put_encoded("id", event.id());
    values.put_encoded("source", event.source().as_str());
    values.put_encoded("type", event.ty());
    if let Some(subject) = event.subject() {
        values.put_encoded("subject", subject);
    }
    if let Some(time) = time_text(event) {
        values.put_encoded("time", &time);
    }
    if let Some(schema) = event.dataschema() {
        values.put_encoded("dataschema", schema.as_str());
    }
    for (name, value) in event.iter_extensions() {
        match value {
            ExtensionValue::String(s) => values.put_encoded(name, s),
            ExtensionValue::Boolean(b) => values.put(ce_header(name), |buffer| {
                buffer.extend_from_slice(if *b { b"true" } else { b"false" })
            }),
            ExtensionValue::Integer(i) => values.put(ce_header(name), |buffer| {
                // Writing into a Vec cannot fail.
                let _ = write!(buffer, "{i}");
            }),
        }
    }
    // Content-Type is an ordinary header, sent as it came (parameters such as a
    // multipart boundary included); only `ce-` headers are percent-encoded.
    // Without datacontenttype, a structured event's `data` is JSON (the JSON
    // format's rule), but bytes of no stated type (`data_base64`, or a binary
    // request without Content-Type) are not labelled as anything.
    let content_type = match (event.datacontenttype(), event.data()) {
        (Some(content_type), _) => Some(content_type),
        (None, Some(Data::String(_) | Data::Json(_))) => Some("application/json"),
        (None, _) => None,
    };
    // Always a header value: ingress takes only media types (RFC 2046), US-ASCII.
    if let Some(content_type) = content_type {
        values.put(Some(CONTENT_TYPE), |b| {
            b.extend_from_slice(content_type.as_bytes())
        });
    }
    values.into_headers()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::event::{check_text, data_bytes};

    #[test]
    fn dataschema_is_an_absolute_uri_as_sent() {
        let event = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ];
        for refused in ["urn:x%20y%7C", "http://x/a%7Cb", "rel", "http://x/%25zz"] {
            let mut pairs = event.to_vec();
            pairs.push(("ce-dataschema", refused));
            let error = read_binary(&headers(&pairs), Bytes::new()).expect_err(refused);
            assert!(error.message.contains("dataschema"), "{refused}: {error}");
        }
        let mut pairs = event.to_vec();
        pairs.push(("ce-dataschema", "http://example.com/s"));
        assert!(read_binary(&headers(&pairs), Bytes::new()).is_ok());
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/orders"),
            ("ce-type", "order.created"),
        ]
    }

    #[test]
    fn control_characters_and_noncharacters_read_back_but_are_refused_as_input() {
        for (header, value) in [
            ("ce-id", "a%0Ab"),
            ("ce-id", "a%00"),
            ("ce-type", "t%7F"),
            ("ce-subject", "s%C2%85"),
            ("ce-note", "n%0D%0Aforged"),
            ("ce-note", "%EF%B7%90"),
            ("ce-note", "%EF%BF%BE"),
        ] {
            let mut pairs: Vec<_> = minimal()
                .into_iter()
                .filter(|(name, _)| *name != header)
                .collect();
            pairs.push((header, value));
            let read = read_binary(&headers(&pairs), Bytes::new())
                .map(|(event, _)| event)
                .expect("read back as stored");
            let error = check_text(&read).expect_err(value);
            let attribute = header.trim_start_matches("ce-");
            assert!(
                error
                    .message
                    .contains(&format!("attribute {attribute} holds U+")),
                "{value}: {}",
                error.message
            );
        }
        let mut pairs = minimal();
        pairs.push(("ce-note", "tab%09and%20caf%C3%A9%20%E2%82%AC"));
        let read = read_binary(&headers(&pairs), Bytes::new())
            .map(|(event, _)| event)
            .expect("read back as stored");
        let refused = check_text(&read).expect_err("a tab");
        assert!(refused.message.contains("U+0009"), "{}", refused.message);
        let mut pairs = minimal();
        pairs.push(("ce-note", "caf%C3%A9%20%E2%82%AC%20%F0%9F%98%80"));
        let read = read_binary(&headers(&pairs), Bytes::new())
            .map(|(event, _)| event)
            .expect("valid");
        assert!(check_text(&read).is_ok());
    }

    #[test]
    fn header_values_are_percent_decoded() {
        let mut pairs = minimal();
        pairs.push(("ce-subject", "caf%C3%A9%20au%20lait"));
        pairs.push(("ce-note", "100%25"));
        let event = read_binary(&headers(&pairs), Bytes::new())
            .map(|(event, _)| event)
            .expect("valid");
        assert_eq!(event.subject(), Some("café au lait"));
        assert_eq!(
            event.extension("note").map(|v| v.to_string()),
            Some("100%".to_string())
        );
    }

    #[test]
    fn double_quoted_values_are_unescaped_before_percent_decoding() {
        let mut pairs = minimal();
        pairs.push(("ce-subject", r#""caf%C3%A9 \"au\" lait""#));
        pairs.push(("ce-note", r#"a "b c" d"#));
        let event = read_binary(&headers(&pairs), Bytes::new())
            .map(|(event, _)| event)
            .expect("valid");
        assert_eq!(event.subject(), Some(r#"café "au" lait"#));
        assert_eq!(
            event.extension("note").map(|v| v.to_string()),
            Some("a b c d".to_string())
        );
        let mut open = minimal();
        open.push(("ce-subject", r#""no end"#));
        let error = read_binary(&headers(&open), Bytes::new()).expect_err("open quote");
        assert!(error.to_string().contains("ce-subject"), "{error}");
    }

    #[test]
    fn the_body_is_kept_byte_for_byte_and_written_back() {
        let mut pairs = minimal();
        pairs.push(("content-type", "application/json"));
        pairs.push(("ce-subject", "a %22quoted%22 word"));
        let body = Bytes::from_static(b"{ \"a\" :1 }");
        let event = read_binary(&headers(&pairs), body.clone())
            .map(|(event, _)| event)
            .expect("valid");
        let (written, out) = (binary_headers(&event), Bytes::from(data_bytes(&event)));
        assert_eq!(out, body);
        assert_eq!(written["ce-subject"], "a%20%22quoted%22%20word");
        assert_eq!(written["content-type"], "application/json");
        let again = read_binary(&written, out)
            .map(|(event, _)| event)
            .expect("round trip");
        assert_eq!(again.subject(), Some("a \"quoted\" word"));
    }

    /// CloudEvents 0.3 arrives as 1.0: `schemaurl` is its `dataschema`, base64
    /// data under `datacontentencoding` is decoded. Under 1.0 both names are
    /// extensions like any other.
    #[test]
    fn a_0_3_event_is_read_as_1_0() {
        let mut pairs = minimal();
        pairs[0] = ("ce-specversion", "0.3");
        pairs.push(("content-type", "text/plain"));
        pairs.push(("ce-schemaurl", "http://example.com/schema"));
        pairs.push(("ce-datacontentencoding", "base64"));
        let event = read_binary(&headers(&pairs), Bytes::from_static(b"aGVsbG8="))
            .map(|(event, _)| event)
            .expect("a 0.3 event");
        assert_eq!(event.specversion(), cloudevents::event::SpecVersion::V10);
        assert_eq!(
            event.dataschema().map(|u| u.as_str()),
            Some("http://example.com/schema")
        );
        assert_eq!(data_bytes(&event), b"hello");
        assert!(event.extension("schemaurl").is_none());
        let mut pairs = minimal();
        pairs.push(("ce-schemaurl", "http://example.com/schema"));
        let event = read_binary(&headers(&pairs), Bytes::new())
            .map(|(event, _)| event)
            .expect("1.0");
        assert!(event.dataschema().is_none());
        assert!(event.extension("schemaurl").is_some(), "an extension");
    }

    #[test]
    fn missing_or_bad_attributes_are_named() {
        for (drop, expected) in [
            ("ce-id", "id"),
            ("ce-source", "source"),
            ("ce-type", "type"),
            ("ce-specversion", "specversion"),
        ] {
            let pairs: Vec<_> = minimal().into_iter().filter(|(n, _)| *n != drop).collect();
            let error = read_binary(&headers(&pairs), Bytes::new()).expect_err("missing");
            assert!(error.message.contains(expected), "{error}");
        }
        let mut pairs = minimal();
        pairs.push(("ce-time", "yesterday"));
        assert!(
            read_binary(&headers(&pairs), Bytes::new())
                .expect_err("bad time")
                .message
                .contains("time")
        );
        let mut pairs = minimal();
        pairs[0] = ("ce-specversion", "0.2");
        assert!(read_binary(&headers(&pairs), Bytes::new()).is_err());
        let mut pairs = minimal();
        pairs[0] = ("ce-specversion", "0.3");
        pairs.push(("ce-datacontentencoding", "gzip"));
        let error = read_binary(&headers(&pairs), Bytes::from_static(b"x")).expect_err("gzip");
        assert!(error.message.contains("datacontentencoding"), "{error}");
        let mut pairs = minimal();
        pairs[1] = ("ce-id", "");
        assert!(read_binary(&headers(&pairs), Bytes::new()).is_err());
        let mut pairs = minimal();
        pairs.push(("ce-Bad_Name", "x"));
        assert!(read_binary(&headers(&pairs), Bytes::new()).is_err());
    }
}
