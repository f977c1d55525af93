//! An event's attributes and data as the wire needs them: the data as bytes, the
//! time as RFC 3339, and the required attributes checked non-empty.

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event};
use percent_encoding::{AsciiSet, CONTROLS};

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

/// The `time` attribute as RFC 3339 in UTC with `Z`, its fraction of a second
/// without trailing zeros: as Go's `RFC3339Nano` writes it, so Knative's and
/// the Go SDK's filters and deliveries read the same text as ours
/// (`12:34:56.78Z`, `12:34:56Z`).
pub fn time_text(event: &Event) -> Option<String> {
    event.time().map(|t| {
        let mut text = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
        text.push('Z');
        text
    })
}

/// Required attributes must not be empty (the SDK accepts ""), `source` must be
/// a URI-reference and `subject`, when present, not empty: what every event
/// read has, also one read back from a log.
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

/// `dataschema` is a URI ("Absolute URI as defined in RFC 3986 Section
/// 4.3"): checked as RFC 3986's `URI`, a scheme and what may follow it — a
/// fragment too, which senders use (`…#/definitions/order`) though 4.3's form
/// has none. Checked as sent, since the SDK reads it as a WHATWG URL, which
/// accepts (and rewrites) more: a space, `|`, a malformed `%` escape.
pub(super) fn check_dataschema(text: &str) -> Result<(), EventError> {
    fluent_uri::Uri::parse(text).map(|_| ()).map_err(|error| {
        EventError::new(format!(
            "attribute dataschema is not an absolute URI (RFC 3986): {error}"
        ))
    })
}

/// What the binding says must be percent-encoded in a header value: space, double
/// quote, percent, and everything outside printable ASCII.
pub(super) const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// No String attribute may hold what CloudEvents 1.0.2 disallows in one (see
/// `check_string`), and `datacontenttype` must be a media type (RFC 2046).
/// Checked on what comes in (ingress, replies), not on events read back from
/// a log: one an earlier version accepted stays deliverable. How many
/// attributes an event has, and how long they are, is bounded only by the
/// request's size: an intermediary "MUST forward events of a size of 64 KiB
/// or less" (CloudEvents, Size Limits), and one too large for binary mode's
/// headers is delivered in structured mode (`fits_binary`).
pub fn check_text(event: &Event) -> Result<(), EventError> {
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
    if let Some(media_type) = event.datacontenttype() {
        check_media_type(media_type).map_err(|why| {
            EventError::new(format!(
                "attribute datacontenttype {media_type:?} is not a media type (RFC 2046: type/subtype, then ;name=value parameters): {why}"
            ))
        })?;
    }
    Ok(())
}

/// RFC 2045's `token`: US-ASCII but controls, space and `tspecials`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// The length of the token `text` starts with.
fn token_length(text: &str) -> usize {
    text.find(|c| !is_token_char(c)).unwrap_or(text.len())
}

/// `type/subtype *(OWS ";" OWS name=value)`, a value a token or a quoted string
/// (RFC 2045 §5.1, with HTTP's optional whitespace around `;`).
fn check_media_type(value: &str) -> Result<(), &'static str> {
    let type_length = token_length(value);
    if type_length == 0 {
        return Err("no type");
    }
    let rest = value[type_length..]
        .strip_prefix('/')
        .ok_or("no / after the type")?;
    let subtype_length = token_length(rest);
    if subtype_length == 0 {
        return Err("no subtype");
    }
    // `*` is a token character, but `*/*` and `text/*` are HTTP's ranges of
    // media types (in Accept), not a type data can have.
    if &value[..type_length] == "*" || &rest[..subtype_length] == "*" {
        return Err("a media range (*), not a media type");
    }
    let mut rest = &rest[subtype_length..];
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(());
        }
        rest = rest
            .strip_prefix(';')
            .ok_or("something other than a parameter after the subtype")?
            .trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(());
        }
        let name_length = token_length(rest);
        if name_length == 0 {
            return Err("a parameter without a name");
        }
        rest = rest[name_length..]
            .strip_prefix('=')
            .ok_or("a parameter without =value")?;
        rest = match rest.strip_prefix('"') {
            Some(quoted) => quoted_string_rest(quoted)?,
            None => match token_length(rest) {
                0 => return Err("a parameter without a value"),
                length => &rest[length..],
            },
        };
    }
}

/// What follows a quoted string whose opening quote was taken.
fn quoted_string_rest(quoted: &str) -> Result<&str, &'static str> {
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok(&quoted[at + 1..]),
            '\\' => {
                chars.next().ok_or("an unterminated quoted value")?;
            }
            // Controls never get here: String attributes may not hold them.
            c if !c.is_ascii() => {
                return Err("a quoted value holds a character outside US-ASCII");
            }
            _ => {}
        }
    }
    Err("an unterminated quoted value")
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

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV10};

    use super::{check_media_type, time_text};

    #[test]
    fn times_are_written_as_go_writes_rfc3339nano() {
        for (sent, written) in [
            ("2020-03-21T12:34:56.78Z", "2020-03-21T12:34:56.78Z"),
            ("2020-03-21T12:34:56.780Z", "2020-03-21T12:34:56.78Z"),
            ("2020-03-21T12:34:50Z", "2020-03-21T12:34:50Z"),
            ("2020-03-21T12:34:50.000Z", "2020-03-21T12:34:50Z"),
            (
                "2020-03-21T12:34:56.000000001Z",
                "2020-03-21T12:34:56.000000001Z",
            ),
            ("2020-03-21T14:34:56.5+02:00", "2020-03-21T12:34:56.5Z"),
        ] {
            let event = EventBuilderV10::new()
                .id("1")
                .source("/s")
                .ty("t")
                .time(sent)
                .build()
                .expect("an event");
            assert_eq!(time_text(&event).as_deref(), Some(written), "{sent}");
        }
    }

    #[test]
    fn media_types_are_read_as_rfc_2045_writes_them() {
        for valid in [
            "application/json",
            "application/cloudevents+json; charset=utf-8",
            "text/plain;charset=UTF-8",
            "text/plain ; charset=utf-8 ;format=flowed",
            "multipart/mixed; boundary=\"a;b \\\" c\"",
            "application/vnd.example.v2+avro",
            "text/plain;",
        ] {
            assert_eq!(check_media_type(valid), Ok(()), "{valid}");
        }
        for (invalid, why) in [
            ("", "no type"),
            ("json", "no / after the type"),
            ("not a type", "no / after the type"),
            ("text/", "no subtype"),
            ("/plain", "no type"),
            (
                "text/plain charset=utf-8",
                "something other than a parameter after the subtype",
            ),
            ("text/plain; =x", "a parameter without a name"),
            ("text/plain; charset", "a parameter without =value"),
            ("text/plain; charset=", "a parameter without a value"),
            ("*/*", "a media range (*), not a media type"),
            ("application/*", "a media range (*), not a media type"),
            ("text/plain; a=\"open", "an unterminated quoted value"),
            ("text/plain; note=ü", "a parameter without a value"),
            (
                "text/plain; note=\"ü\"",
                "a quoted value holds a character outside US-ASCII",
            ),
            (
                "text/plain/x",
                "something other than a parameter after the subtype",
            ),
        ] {
            assert_eq!(check_media_type(invalid), Err(why), "{invalid:?}");
        }
    }
}
