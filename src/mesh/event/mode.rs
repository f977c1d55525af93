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

#[cfg(test)]
mod tests {
    use super::*;

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
