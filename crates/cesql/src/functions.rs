//! The built-in functions (spec 3.5): name/arity resolution at parse time and
//! their evaluation.
//!
//! Besides the v1 string and math functions this includes the casting
//! functions `INT`, `BOOL` and `STRING` (used by the conformance suite and the
//! spec's own examples) and `IS_BOOL`/`IS_INT` (from the draft spec, still
//! offered by the Go SDK that Knative filters are written against).
//!
//! String positions and lengths count Unicode scalar values, never bytes.
//!
//! Every function's string work is charged to the evaluation's budget (each
//! is linear in the strings it reads and builds), and no function builds a
//! string longer than `MAX_STRING_BYTES`: see the `limits` module.

use std::borrow::Cow;

use super::Attributes;
use super::ast::Expr;
use super::cast;
use super::error::{EvalError, LimitExceeded};
use super::eval::Evaluator;
use super::limits::MAX_STRING_BYTES;
use super::value::{Type, ValueRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    Length,
    Concat,
    ConcatWs,
    Lower,
    Upper,
    Trim,
    Left,
    Right,
    Substring,
    Abs,
    Int,
    Bool,
    String,
    IsBool,
    IsInt,
}

/// Name, function, fewest and most arguments (`None`: variadic).
const TABLE: &[(&str, Builtin, usize, Option<usize>)] = &[
    ("LENGTH", Builtin::Length, 1, Some(1)),
    ("CONCAT", Builtin::Concat, 0, None),
    ("CONCAT_WS", Builtin::ConcatWs, 1, None),
    ("LOWER", Builtin::Lower, 1, Some(1)),
    ("UPPER", Builtin::Upper, 1, Some(1)),
    ("TRIM", Builtin::Trim, 1, Some(1)),
    ("LEFT", Builtin::Left, 2, Some(2)),
    ("RIGHT", Builtin::Right, 2, Some(2)),
    ("SUBSTRING", Builtin::Substring, 2, Some(3)),
    ("ABS", Builtin::Abs, 1, Some(1)),
    ("INT", Builtin::Int, 1, Some(1)),
    ("BOOL", Builtin::Bool, 1, Some(1)),
    ("STRING", Builtin::String, 1, Some(1)),
    ("IS_BOOL", Builtin::IsBool, 1, Some(1)),
    ("IS_INT", Builtin::IsInt, 1, Some(1)),
];

impl Builtin {
    /// Function names are case-insensitive; overloads differ by arity only.
    pub(super) fn resolve(name: &str, arity: usize) -> Option<Builtin> {
        TABLE
            .iter()
            .find(|(candidate, _, min, max)| {
                candidate.eq_ignore_ascii_case(name)
                    && arity >= *min
                    && max.is_none_or(|max| arity <= max)
            })
            .map(|&(_, builtin, _, _)| builtin)
    }

    fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(_, builtin, _, _)| *builtin == self)
            .map_or("?", |(name, _, _, _)| name)
    }

    fn return_type(self) -> Type {
        match self {
            Builtin::Length | Builtin::Abs | Builtin::Int => Type::Integer,
            Builtin::Bool | Builtin::IsBool | Builtin::IsInt => Type::Boolean,
            Builtin::Concat
            | Builtin::ConcatWs
            | Builtin::Lower
            | Builtin::Upper
            | Builtin::Trim
            | Builtin::Left
            | Builtin::Right
            | Builtin::Substring
            | Builtin::String => Type::String,
        }
    }
}

impl<'a, E: Attributes + ?Sized> Evaluator<'a, '_, E> {
    /// Calls a built-in. If an argument reports an error the function is not
    /// applied and yields the zero value of its return type.
    pub(super) fn call(&mut self, builtin: Builtin, args: &'a [Expr]) -> ValueRef<'a> {
        self.try_call(builtin, args)
            .unwrap_or_else(|| builtin.return_type().zero())
    }

    /// `None` as soon as an argument reports an error.
    fn try_call(&mut self, builtin: Builtin, args: &'a [Expr]) -> Option<ValueRef<'a>> {
        use Builtin as B;
        let value = match (builtin, args) {
            (B::Length, [x]) => {
                let s = self.string_arg(x)?;
                self.charge(s.len())?;
                ValueRef::Integer(i32::try_from(s.chars().count()).unwrap_or(i32::MAX))
            }
            (B::Concat, parts) => ValueRef::String(self.join(builtin, None, parts)?),
            (B::ConcatWs, [delimiter, parts @ ..]) => {
                let delimiter = self.string_arg(delimiter)?;
                ValueRef::String(self.join(builtin, Some(&delimiter), parts)?)
            }
            (B::Lower, [x]) => {
                let s = self.string_arg(x)?;
                ValueRef::String(self.case_mapped(builtin, s, lower)?)
            }
            (B::Upper, [x]) => {
                let s = self.string_arg(x)?;
                ValueRef::String(self.case_mapped(builtin, s, upper)?)
            }
            (B::Trim, [x]) => {
                let s = self.string_arg(x)?;
                self.charge(s.len())?;
                ValueRef::String(trim(s))
            }
            (B::Left | B::Right, [x, count]) => {
                let s = self.string_arg(x)?;
                self.charge(s.len())?;
                let count = self.integer_arg(count)?;
                let result = if builtin == B::Left {
                    left(s, count)
                } else {
                    right(s, count)
                };
                ValueRef::String(self.function_result(builtin, result))
            }
            (B::Substring, [x, position]) => {
                let s = self.string_arg(x)?;
                self.charge(s.len())?;
                let position = self.integer_arg(position)?;
                ValueRef::String(self.function_result(builtin, substring(s, position, None)))
            }
            (B::Substring, [x, position, length]) => {
                let s = self.string_arg(x)?;
                self.charge(s.len())?;
                let position = self.integer_arg(position)?;
                let length = self.integer_arg(length)?;
                let result = substring(s, position, Some(length));
                ValueRef::String(self.function_result(builtin, result))
            }
            (B::Abs, [x]) => {
                let x = self.integer_arg(x)?;
                // Spec 3.5.2: |i32::MIN| saturates, with a math error.
                ValueRef::Integer(x.checked_abs().unwrap_or_else(|| {
                    self.report(EvalError::Overflow { operator: "ABS" });
                    i32::MAX
                }))
            }
            (B::Int, [x]) => {
                let x = self.operand(x)?;
                self.charge_parse(&x)?;
                ValueRef::Integer(cast::to_integer(x).unwrap_or_else(|e| {
                    self.report(e);
                    0
                }))
            }
            (B::Bool, [x]) => {
                let x = self.operand(x)?;
                ValueRef::Boolean(cast::to_boolean(x).unwrap_or_else(|e| {
                    self.report(e);
                    false
                }))
            }
            (B::String, [x]) => ValueRef::String(self.string_arg(x)?),
            (B::IsBool, [x]) => {
                ValueRef::Boolean(cast::parse_boolean(&self.string_arg(x)?).is_some())
            }
            (B::IsInt, [x]) => {
                let s = self.string_arg(x)?;
                self.charge(s.len())?;
                ValueRef::Boolean(cast::parse_integer(&s).is_some())
            }
            // `resolve` only hands out builtins with a matching arity; this arm
            // keeps a future table/match mismatch from panicking.
            _ => {
                self.report(EvalError::FunctionEvaluation {
                    function: builtin.name(),
                    reason: "unsupported number of arguments",
                });
                builtin.return_type().zero()
            }
        };
        Some(value)
    }

    fn string_arg(&mut self, arg: &'a Expr) -> Option<Cow<'a, str>> {
        self.operand(arg).map(cast::to_string)
    }

    fn integer_arg(&mut self, arg: &'a Expr) -> Option<i32> {
        let value = self.operand(arg)?;
        Some(self.integer(value))
    }

    /// `CONCAT` and `CONCAT_WS`: refused before the result would outgrow
    /// `MAX_STRING_BYTES`, so it never does.
    fn join(
        &mut self,
        builtin: Builtin,
        delimiter: Option<&str>,
        parts: &'a [Expr],
    ) -> Option<Cow<'a, str>> {
        // A single part is returned as is, without copying.
        if let [only] = parts {
            return self.string_arg(only);
        }
        let mut joined = String::new();
        for (i, part) in parts.iter().enumerate() {
            let part = self.string_arg(part)?;
            let delimiter = if i > 0 {
                delimiter.unwrap_or_default()
            } else {
                ""
            };
            let added = delimiter.len().saturating_add(part.len());
            self.fits(builtin, joined.len().saturating_add(added))?;
            self.charge(added)?;
            joined.push_str(delimiter);
            joined.push_str(&part);
        }
        Some(Cow::Owned(joined))
    }

    /// `UPPER` and `LOWER`: the mapping may grow a string (up to three times,
    /// in bytes), so the result is checked once built.
    fn case_mapped(
        &mut self,
        builtin: Builtin,
        s: Cow<'a, str>,
        map: impl FnOnce(Cow<'a, str>) -> Cow<'a, str>,
    ) -> Option<Cow<'a, str>> {
        self.charge(s.len())?;
        let mapped = map(s);
        if let Cow::Owned(built) = &mapped {
            self.fits(builtin, built.len())?;
            self.charge(built.len())?;
        }
        Some(mapped)
    }

    /// `None`, with the error reported, if `builtin` would build a string of
    /// `length` bytes, over `MAX_STRING_BYTES`.
    fn fits(&mut self, builtin: Builtin, length: usize) -> Option<()> {
        if length <= MAX_STRING_BYTES {
            return Some(());
        }
        self.report(
            LimitExceeded::StringLength {
                function: builtin.name(),
                limit: MAX_STRING_BYTES,
            }
            .into(),
        );
        None
    }

    fn function_result(&mut self, builtin: Builtin, result: StringResult<'a>) -> Cow<'a, str> {
        result.unwrap_or_else(|(fallback, reason)| {
            self.report(EvalError::FunctionEvaluation {
                function: builtin.name(),
                reason,
            });
            fallback
        })
    }
}

/// The result of a string function, or the value to return together with
/// the reason for a FunctionEvaluationError.
type StringResult<'a> = Result<Cow<'a, str>, (Cow<'a, str>, &'static str)>;

fn lower(s: Cow<'_, str>) -> Cow<'_, str> {
    // Filters often lower-case attributes that already are: skip the copy.
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) {
        s
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn upper(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_lowercase()) {
        s
    } else {
        Cow::Owned(s.to_uppercase())
    }
}

/// Trims Unicode whitespace (`str::trim` uses the White_Space property).
fn trim(s: Cow<'_, str>) -> Cow<'_, str> {
    let start = s.len() - s.trim_start().len();
    let end = s.trim_end().len().max(start);
    slice(s, start, end)
}

/// The first `count` characters; all of `s` when it is shorter.
fn left(s: Cow<'_, str>, count: i32) -> StringResult<'_> {
    let Ok(count) = usize::try_from(count) else {
        return Err((s, "the number of characters must not be negative"));
    };
    let end = byte_offset(&s, count);
    Ok(slice(s, 0, end))
}

/// The last `count` characters; all of `s` when it is shorter.
fn right(s: Cow<'_, str>, count: i32) -> StringResult<'_> {
    let Ok(count) = usize::try_from(count) else {
        return Err((s, "the number of characters must not be negative"));
    };
    let skip = s.chars().count().saturating_sub(count);
    let start = byte_offset(&s, skip);
    let end = s.len();
    Ok(slice(s, start, end))
}

/// `SUBSTRING(s, position[, length])`: 1-based `position`, counted from the
/// end when negative; `0` gives the empty string.
fn substring(s: Cow<'_, str>, position: i32, length: Option<i32>) -> StringResult<'_> {
    const EMPTY: Cow<'static, str> = Cow::Borrowed("");
    if length.is_some_and(|length| length < 0) {
        return Err((EMPTY, "the length must not be negative"));
    }
    // i64 so that negating and adding cannot overflow.
    let chars = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    let position = i64::from(position);
    if position > chars || position < -chars {
        return Err((EMPTY, "the position is outside the string"));
    }
    let first = match position {
        0 => return Ok(EMPTY),
        p if p > 0 => p - 1,
        p => chars + p,
    };
    let last = length.map_or(chars, |length| {
        first.saturating_add(i64::from(length)).min(chars)
    });
    // Both are within 0..=chars here, so the conversions cannot fail.
    let first = usize::try_from(first).unwrap_or_default();
    let last = usize::try_from(last).unwrap_or_default();
    let start = byte_offset(&s, first);
    let end = byte_offset(&s, last);
    Ok(slice(s, start, end))
}

/// Byte offset of the character at `index`, or the length when past the end.
fn byte_offset(s: &str, index: usize) -> usize {
    s.char_indices()
        .nth(index)
        .map_or(s.len(), |(offset, _)| offset)
}

/// `s[start..end]`, borrowing when `s` is borrowed. Offsets come from
/// `byte_offset`/`trim`, so they are on character boundaries; should they not
/// be, the result is empty rather than a panic.
fn slice(s: Cow<'_, str>, start: usize, end: usize) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(start..end).unwrap_or_default()),
        Cow::Owned(s) => Cow::Owned(s.get(start..end).unwrap_or_default().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(result: StringResult<'_>) -> String {
        result.expect("no function error").into_owned()
    }

    fn err(result: StringResult<'_>) -> String {
        result.expect_err("function error").0.into_owned()
    }

    #[test]
    fn resolution_is_case_insensitive_and_checks_arity() {
        assert_eq!(Builtin::resolve("concat_ws", 1), Some(Builtin::ConcatWs));
        assert_eq!(Builtin::resolve("Concat_Ws", 5), Some(Builtin::ConcatWs));
        assert_eq!(Builtin::resolve("CONCAT_WS", 0), None);
        assert_eq!(Builtin::resolve("concat", 0), Some(Builtin::Concat));
        assert_eq!(Builtin::resolve("substring", 2), Some(Builtin::Substring));
        assert_eq!(Builtin::resolve("substring", 3), Some(Builtin::Substring));
        assert_eq!(Builtin::resolve("substring", 4), None);
        assert_eq!(Builtin::resolve("nope", 1), None);
        for (name, builtin, _, _) in TABLE {
            assert_eq!(builtin.name(), *name);
        }
    }

    #[test]
    fn left_and_right() {
        assert_eq!(ok(left("abc".into(), 2)), "ab");
        assert_eq!(ok(left("abc".into(), 10)), "abc");
        assert_eq!(ok(left("".into(), 0)), "");
        assert_eq!(ok(left("é日x".into(), 2)), "é日");
        assert_eq!(err(left("abc".into(), -2)), "abc");
        assert_eq!(ok(right("abc".into(), 2)), "bc");
        assert_eq!(ok(right("abc".into(), 10)), "abc");
        assert_eq!(ok(right("é日x".into(), 2)), "日x");
        assert_eq!(err(right("abc".into(), i32::MIN)), "abc");
    }

    #[test]
    fn substring_positions() {
        assert_eq!(ok(substring("abcdef".into(), 1, None)), "abcdef");
        assert_eq!(ok(substring("Quadratically".into(), 5, None)), "ratically");
        assert_eq!(ok(substring("Sakila".into(), -3, None)), "ila");
        assert_eq!(ok(substring("abcdef".into(), 2, Some(4))), "bcde");
        assert_eq!(ok(substring("Sakila".into(), -5, Some(3))), "aki");
        assert_eq!(ok(substring("abc".into(), 2, Some(i32::MAX))), "bc");
        assert_eq!(ok(substring("abc".into(), 0, Some(1))), "");
        assert_eq!(ok(substring("abc".into(), 3, Some(0))), "");
        assert_eq!(ok(substring("abc".into(), -3, None)), "abc");
        assert_eq!(ok(substring("日本語".into(), 2, Some(1))), "本");
        assert_eq!(err(substring("abcdef".into(), 10, None)), "");
        assert_eq!(err(substring("abcdef".into(), -10, Some(10))), "");
        assert_eq!(err(substring("abc".into(), 1, Some(-1))), "");
        assert_eq!(err(substring("".into(), 1, None)), "");
        assert_eq!(err(substring("abc".into(), i32::MIN, None)), "");
    }

    #[test]
    fn case_and_trim() {
        assert!(matches!(lower("abc".into()), Cow::Borrowed("abc")));
        assert_eq!(lower("AbÇ".into()), "abç");
        assert!(matches!(upper("ABC".into()), Cow::Borrowed("ABC")));
        assert_eq!(upper("straße".into()), "STRASSE");
        assert_eq!(trim("  a b c \u{3000}".into()), "a b c");
        assert_eq!(trim("   ".into()), "");
        assert_eq!(trim("\u{1}x\u{1}".into()), "\u{1}x\u{1}");
    }
}
