//! Type casting (spec 3.7): the explicit casts behind `INT`, `BOOL` and
//! `STRING`, and the implicit coercions operators and functions apply to
//! their operands.
//!
//! The one place implicit and explicit casting differ is Integer -> Boolean:
//! `BOOL(10)` is `true`, but `NOT 10` is a cast error. The v1 spec's table
//! allows the cast, while the conformance suite ("Invalid int cast") expects
//! the implicit one to fail; refusing it implicitly also keeps `1 AND x` from
//! silently meaning something in a filter.

use std::borrow::Cow;

use super::error::EvalError;
use super::value::{Type, ValueRef};

/// How much of an offending value a cast error quotes.
const MAX_QUOTED_CHARS: usize = 32;

/// Any value to String; never fails. Borrowed strings stay borrowed.
pub(super) fn to_string(value: ValueRef<'_>) -> Cow<'_, str> {
    match value {
        ValueRef::String(s) => s,
        ValueRef::Integer(i) => Cow::Owned(i.to_string()),
        ValueRef::Boolean(b) => Cow::Borrowed(if b { "true" } else { "false" }),
    }
}

/// Any value to Integer, explicitly (`INT`) or implicitly: the two agree.
pub(super) fn to_integer(value: ValueRef<'_>) -> Result<i32, EvalError> {
    match value {
        ValueRef::Integer(i) => Ok(i),
        ValueRef::Boolean(b) => Ok(i32::from(b)),
        ValueRef::String(s) => parse_integer(&s).ok_or_else(|| cast_error(&s, Type::Integer)),
    }
}

/// Any value to Boolean, explicitly (`BOOL`): a non-zero Integer is `true`.
pub(super) fn to_boolean(value: ValueRef<'_>) -> Result<bool, EvalError> {
    match value {
        ValueRef::Integer(i) => Ok(i != 0),
        other => coerce_boolean(other),
    }
}

/// Any value to Boolean, implicitly (operands of NOT, AND, OR, XOR, `=`, IN):
/// Integers are refused, see the module documentation.
pub(super) fn coerce_boolean(value: ValueRef<'_>) -> Result<bool, EvalError> {
    match value {
        ValueRef::Boolean(b) => Ok(b),
        ValueRef::String(s) => parse_boolean(&s).ok_or_else(|| cast_error(&s, Type::Boolean)),
        ValueRef::Integer(i) => Err(EvalError::Cast {
            value: i.to_string(),
            from: Type::Integer,
            to: Type::Boolean,
        }),
    }
}

/// A base-10, optionally signed (`+`/`-`), 32-bit integer; no whitespace.
pub(super) fn parse_integer(s: &str) -> Option<i32> {
    // `i32::from_str` implements exactly the spec's String -> Integer rule,
    // including the optional leading sign and overflow detection.
    s.parse().ok()
}

/// `true` or `false`, case-insensitively.
pub(super) fn parse_boolean(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn cast_error(s: &str, to: Type) -> EvalError {
    let mut quoted = String::with_capacity(s.len().min(MAX_QUOTED_CHARS) + 5);
    quoted.push('\'');
    let mut chars = s.chars();
    quoted.extend(chars.by_ref().take(MAX_QUOTED_CHARS));
    if chars.next().is_some() {
        quoted.push('…');
    }
    quoted.push('\'');
    EvalError::Cast {
        value: quoted,
        from: Type::String,
        to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> ValueRef<'_> {
        ValueRef::from(text)
    }

    #[test]
    fn string_to_integer_follows_the_spec_table() {
        assert_eq!(to_integer(s("42")).ok(), Some(42));
        assert_eq!(to_integer(s("+7")).ok(), Some(7));
        assert_eq!(to_integer(s("-007")).ok(), Some(-7));
        assert_eq!(to_integer(s("-2147483648")).ok(), Some(i32::MIN));
        for bad in ["", " 1", "1 ", "2147483648", "1.0", "0x10", "abc", "+-1"] {
            let err = to_integer(s(bad)).expect_err(bad);
            assert!(
                matches!(
                    err,
                    EvalError::Cast {
                        to: Type::Integer,
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn booleans_and_integers_convert_both_ways_explicitly() {
        assert_eq!(to_integer(ValueRef::Boolean(true)).ok(), Some(1));
        assert_eq!(to_integer(ValueRef::Boolean(false)).ok(), Some(0));
        assert_eq!(to_boolean(ValueRef::Integer(-50)).ok(), Some(true));
        assert_eq!(to_boolean(ValueRef::Integer(0)).ok(), Some(false));
    }

    #[test]
    fn implicit_boolean_coercion_refuses_integers() {
        assert!(coerce_boolean(ValueRef::Integer(1)).is_err());
        assert_eq!(coerce_boolean(s("TrUe")).ok(), Some(true));
        assert_eq!(coerce_boolean(s("FALSE")).ok(), Some(false));
        assert!(coerce_boolean(s("yes")).is_err());
    }

    #[test]
    fn to_string_borrows_strings_and_renders_the_rest() {
        assert!(matches!(to_string(s("x")), Cow::Borrowed("x")));
        assert_eq!(to_string(ValueRef::Integer(-12)), "-12");
        assert_eq!(to_string(ValueRef::Boolean(false)), "false");
    }

    #[test]
    fn cast_errors_quote_a_bounded_prefix() {
        let long = "x".repeat(1000);
        let EvalError::Cast { value, .. } = to_integer(s(&long)).expect_err("not a number") else {
            panic!("expected a cast error");
        };
        assert!(value.chars().count() <= MAX_QUOTED_CHARS + 3, "{value}");
    }
}
