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
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type == BATCH_CONTENT_TYPE {
        Mode::Batched
    } else if media_type.starts_with("application/cloudevents") {
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
        assert_eq!(
            mode_of(Some("application/cloudevents+json; charset=utf-8")),
            Mode::Structured
        );
        assert_eq!(
            mode_of(Some("application/cloudevents-batch+json")),
            Mode::Batched
        );
        assert_eq!(mode_of(Some("application/json")), Mode::Binary);
        assert_eq!(mode_of(None), Mode::Binary);
    }
}
