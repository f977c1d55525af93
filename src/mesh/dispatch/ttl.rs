//! The loop guard: every event carries `knativebrokerttl`; a reply inherits its
//! cause's TTL minus one and is not re-delivered once it reaches zero.

use cloudevents::Event;
use cloudevents::event::ExtensionValue;

pub const EXTENSION: &str = "knativebrokerttl";
pub const INITIAL: i64 = 255;

/// Sets the TTL on an event entering the mesh: 255, or the sender's when it
/// is lower. A sender's above 255 is lowered to it, so no sender can give a
/// reply loop more hops than the mesh allows (2147483647 would never end).
pub fn ensure(event: &mut Event) {
    if current(event).is_none_or(|ttl| ttl > INITIAL) {
        event.set_extension(EXTENSION, ExtensionValue::Integer(INITIAL));
    }
}

/// An event a sender brings with a TTL of its own must have some left: a TTL
/// of zero or less is refused at the door, not looped on. One that is no
/// integer at all is the sender's mistake, not a loop: `ensure` gives it the
/// mesh's own, as Knative's TTL defaulter does.
pub fn check(event: &Event) -> Result<(), String> {
    let spent = match event.extension(EXTENSION) {
        Some(ExtensionValue::Integer(ttl)) => *ttl <= 0,
        // Past i64 too: -99999999999999999999 has no hops left either.
        Some(ExtensionValue::String(text)) => text.trim().parse::<i128>().is_ok_and(|ttl| ttl <= 0),
        _ => false,
    };
    match event.extension(EXTENSION) {
        Some(ttl) if spent => Err(format!("{EXTENSION} is {ttl}: the event has no hops left")),
        _ => Ok(()),
    }
}

pub fn current(event: &Event) -> Option<i64> {
    match event.extension(EXTENSION)? {
        ExtensionValue::Integer(i) => Some(*i),
        ExtensionValue::String(s) => s.trim().parse().ok(),
        ExtensionValue::Boolean(_) => None,
    }
}

/// Gives a reply its TTL from the event that caused it; false when the reply
/// must not go on (the loop guard tripped).
pub fn inherit(reply: &mut Event, cause: &Event) -> bool {
    let remaining = current(cause).unwrap_or(INITIAL) - 1;
    reply.set_extension(EXTENSION, ExtensionValue::Integer(remaining));
    remaining > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::{EventBuilder, EventBuilderV10};

    fn event() -> Event {
        EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .expect("event")
    }

    #[test]
    fn a_reply_counts_down_and_stops_at_zero() {
        let mut cause = event();
        ensure(&mut cause);
        assert_eq!(current(&cause), Some(INITIAL));
        let mut reply = event();
        assert!(inherit(&mut reply, &cause));
        assert_eq!(current(&reply), Some(INITIAL - 1));
        cause.set_extension(EXTENSION, ExtensionValue::String("1".into()));
        assert!(
            !inherit(&mut reply, &cause),
            "TTL 1 leaves nothing for a reply"
        );
    }

    #[test]
    fn a_senders_ttl_is_kept_when_lower_and_lowered_when_higher() {
        for (given, kept) in [(5, 5), (255, 255), (256, 255), (i64::from(i32::MAX), 255)] {
            let mut event = event();
            event.set_extension(EXTENSION, ExtensionValue::Integer(given));
            ensure(&mut event);
            assert_eq!(current(&event), Some(kept), "{given}");
        }
        let mut text = event();
        text.set_extension(EXTENSION, ExtensionValue::String("99999".into()));
        ensure(&mut text);
        assert_eq!(current(&text), Some(INITIAL));
    }

    #[test]
    fn a_ttl_that_is_not_positive_is_refused_and_one_that_is_no_number_reset() {
        let mut event = event();
        assert!(check(&event).is_ok(), "no TTL yet");
        for (given, ok) in [
            ("5", true),
            ("1", true),
            ("0", false),
            ("-3", false),
            ("-99999999999999999999", false),
            ("x", true),
        ] {
            event.set_extension(EXTENSION, ExtensionValue::String(given.into()));
            assert_eq!(check(&event).is_ok(), ok, "{given}");
        }
        event.set_extension(EXTENSION, ExtensionValue::String("x".into()));
        ensure(&mut event);
        assert_eq!(current(&event), Some(INITIAL), "no number: the mesh's own");
        event.set_extension(EXTENSION, ExtensionValue::Boolean(true));
        assert!(check(&event).is_ok());
        ensure(&mut event);
        assert_eq!(current(&event), Some(INITIAL));
        event.set_extension(EXTENSION, ExtensionValue::Integer(0));
        assert!(check(&event).is_err());
    }
}
