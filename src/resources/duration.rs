//! ISO-8601 durations as Knative's `delivery` writes them (`PT0.2S`, `PT1M`).

use std::time::Duration;

/// Parses an ISO-8601 duration without calendar units (days are taken as 24 h).
pub fn parse_iso8601_duration(text: &str) -> Result<Duration, String> {
    // The temporal parser takes ISO-8601 only; `str::parse` would also take "1s".
    let span = jiff::fmt::temporal::SpanParser::new()
        .parse_span(text)
        .map_err(|e| format!("{text:?} is not an ISO-8601 duration such as PT0.5S: {e}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?} cannot be used as a duration: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_knative_uses() {
        assert_eq!(
            parse_iso8601_duration("PT0.2S"),
            Ok(Duration::from_millis(200))
        );
        assert_eq!(parse_iso8601_duration("PT1M"), Ok(Duration::from_secs(60)));
        assert_eq!(
            parse_iso8601_duration("P1D"),
            Ok(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        assert!(parse_iso8601_duration("1s").is_err());
        assert!(parse_iso8601_duration("").is_err());
        assert!(parse_iso8601_duration("-PT1S").is_err());
    }
}
