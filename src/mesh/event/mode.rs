//! Which of the HTTP binding's modes a request uses, read from its Content-Type.

use super::structured::BATCH_CONTENT_TYPE;

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
        .map_or(&b""[..], |c| c.trim().as_bytes());
    let structured = b"application/cloudevents";
    if media_type.eq_ignore_ascii_case(BATCH_CONTENT_TYPE.as_bytes()) {
        Mode::Batched
    } else if media_type
        .get(..structured.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(structured))
    {
        Mode::Structured
    } else {
        Mode::Binary
    }
}

/// A structured-mode event format other than JSON (`application/cloudevents+xml`,
/// `+avro`, `+protobuf`): what it names, for a 415 rather than a JSON parse
/// error. Structured mode without a suffix is read as JSON.
pub fn unsupported_format(content_type: Option<&str>) -> Option<&str> {
    if mode_of(content_type) != Mode::Structured {
        return None;
    }
    let media_type = content_type?.split(';').next()?.trim();
    let suffix = media_type.get("application/cloudevents".len()..)?;
    match suffix {
        "" => None,
        json if json.eq_ignore_ascii_case("+json") => None,
        _ => Some(media_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_formats_other_than_json_are_named() {
        for (content_type, unsupported) in [
            (Some("application/cloudevents+json"), None),
            (Some("Application/CloudEvents+JSON; charset=utf-8"), None),
            (Some("application/cloudevents"), None),
            (Some("application/cloudevents-batch+json"), None),
            (Some("application/json"), None),
            (None, None),
            (
                Some("application/cloudevents+xml"),
                Some("application/cloudevents+xml"),
            ),
            (
                Some("application/cloudevents+avro ;x=y"),
                Some("application/cloudevents+avro"),
            ),
        ] {
            assert_eq!(
                unsupported_format(content_type),
                unsupported,
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn modes_follow_the_content_type() {
        // Media types are case-insensitive; parameters and spaces do not count.
        let table = [
            (
                Some("application/cloudevents+json; charset=utf-8"),
                Mode::Structured,
            ),
            (Some("application/cloudevents-batch+json"), Mode::Batched),
            (Some("application/json"), Mode::Binary),
            (None, Mode::Binary),
            (Some(" Application/CloudEvents+JSON"), Mode::Structured),
            (
                Some("APPLICATION/cloudevents-batch+json ; charset=utf-8"),
                Mode::Batched,
            ),
            (Some("application/cloud"), Mode::Binary),
        ];
        for (content_type, mode) in table {
            assert_eq!(mode_of(content_type), mode, "{content_type:?}");
        }
    }
}
