//! CloudEvents SQL (CESQL) v1: a filter language for CloudEvents.
//!
//! An [`Expression`] is parsed once and then evaluated against many events
//! without re-parsing. Events are seen through the [`Attributes`] trait, so
//! any event type can be filtered (through a small wrapper type for one of
//! another crate); an implementation for a JSON-format CloudEvent
//! (`serde_json::Value`) is provided.
//!
//! ```
//! use cesql::{Expression, Value};
//! use serde_json::json;
//!
//! let filter = Expression::parse("type LIKE '%.error' AND INT(severity) >= 3")?;
//! let event = json!({
//!     "specversion": "1.0", "id": "1", "source": "/app",
//!     "type": "com.example.error", "severity": "4",
//! });
//! assert!(filter.matches(&event));
//! assert_eq!(filter.evaluate(&event).value, Value::Boolean(true));
//! # Ok::<(), cesql::ParseError>(())
//! ```
//!
//! Evaluation never fails outright: like the language itself it is total,
//! and yields a value together with the errors met on the way (see
//! [`Evaluation`] and the `eval` module documentation). A filter passes only
//! if the value is Boolean `true` *and* no error occurred, which is what
//! [`Expression::matches`] checks (spec 1.2).
//!
//! Every expression's cost is bounded ([`limits`]): one too large is refused
//! by [`Expression::parse`], and an evaluation that would do too much work or
//! build too large a string stops with a [`LimitExceeded`] error, which
//! [`Expression::try_matches`] tells apart from a plain non-match.
//!
//! Files: `limits` holds every bound; `lexer` and `parser` turn text into the
//! `ast`; `like` compiles LIKE patterns; `eval` walks the tree using `cast`
//! for implicit conversions and `functions` for built-ins; `value` and `error`
//! hold the public types; `json` adapts JSON events.

mod ast;
mod cast;
mod error;
mod eval;
mod functions;
mod json;
mod lexer;
mod like;
pub mod limits;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use error::{ErrorKind, EvalError, LimitExceeded, ParseError, ParseErrorKind};
pub use limits::Budget;
pub use value::{Type, Value, ValueRef};

/// Read access to the context attributes (and extensions) of an event.
///
/// Implementations should lend string values (`Cow::Borrowed`) so that
/// evaluating a filter does not copy them.
pub trait Attributes {
    /// The attribute called `name` (always lower-case), or `None` if the event
    /// does not carry it. `data` is not an attribute.
    fn attribute(&self, name: &str) -> Option<ValueRef<'_>>;

    /// Whether the event carries the attribute; backs `EXISTS`. Override it
    /// when producing the value costs more than checking for it.
    fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }
}

/// A parsed CESQL expression, ready to be evaluated any number of times.
///
/// It is immutable, `Send` and `Sync`: compile a filter once and share it.
#[derive(Debug, Clone)]
pub struct Expression {
    source: Box<str>,
    root: ast::Expr,
}

/// The outcome of evaluating an expression against one event: always a
/// value, plus the errors raised on the way (empty when all went well).
///
/// When `errors` is not empty, `value` is what the spec prescribes for that
/// situation rather than a meaningful result. An operator or function that
/// raises an error itself carries on with a defined value (`NOT 10` is
/// `true` with a cast error, since the failed cast yields `false`;
/// `ABS(-2147483648)` is `2147483647` with a math error). An operator whose
/// operand reported an error yields the zero value of its type (`""`, `0`,
/// `false`), so `missing = 'x'` and `TRUE AND (1 / 0 = 0)` are `false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub value: Value,
    pub errors: Vec<EvalError>,
}

impl Evaluation {
    /// `true` if no error occurred.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Expression {
    /// Parses and compiles `source`; refuses it if it is over a size limit
    /// ([`limits::MAX_SOURCE_BYTES`], [`limits::MAX_NESTING`],
    /// [`limits::MAX_TREE_DEPTH`], [`limits::MAX_NODES`]).
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        Ok(Expression {
            source: source.into(),
            root: parser::parse(source)?,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first call, in source order, of a function no built-in has, by
    /// name (as written) and number of arguments. The expression compiles —
    /// the spec makes such a call an evaluation error (MissingFunctionError)
    /// — but every evaluation reaching it fails, so a tool that takes
    /// expressions for later (a filter) may refuse them up front.
    pub fn missing_function(&self) -> Option<(&str, usize)> {
        self.root.missing_function()
    }

    /// Evaluates the expression against `event`.
    pub fn evaluate<E: Attributes + ?Sized>(&self, event: &E) -> Evaluation {
        let mut errors = Vec::new();
        let mut budget = Budget::default();
        let value = eval::Evaluator::new(event, &mut errors, &mut budget)
            .eval(&self.root)
            .into_owned();
        Evaluation { value, errors }
    }

    /// Whether `event` passes this expression used as a filter: the result
    /// is Boolean `true` and no error occurred. Allocates nothing unless an
    /// error occurs (or a function such as `CONCAT` builds a string).
    pub fn matches<E: Attributes + ?Sized>(&self, event: &E) -> bool {
        self.try_matches(event).unwrap_or(false)
    }

    /// As [`matches`](Self::matches), but says when the answer is "no"
    /// because the evaluation went over a limit rather than because of the
    /// event's content, so the caller can count and report it.
    pub fn try_matches<E: Attributes + ?Sized>(&self, event: &E) -> Result<bool, LimitExceeded> {
        self.try_matches_within(event, &mut Budget::default())
    }

    /// As [`try_matches`](Self::try_matches), spending the string work from
    /// `budget`: expressions that decide one thing together (a filter of many)
    /// share one budget, so their number does not multiply what an event may
    /// cost.
    pub fn try_matches_within<E: Attributes + ?Sized>(
        &self,
        event: &E,
        budget: &mut Budget,
    ) -> Result<bool, LimitExceeded> {
        let mut errors = Vec::new();
        let value = eval::Evaluator::new(event, &mut errors, budget).eval(&self.root);
        let exceeded = errors.iter().find_map(|error| match error {
            EvalError::Limit(limit) => Some(*limit),
            _ => None,
        });
        match exceeded {
            Some(limit) => Err(limit),
            None => Ok(errors.is_empty() && value == ValueRef::Boolean(true)),
        }
    }
}

impl FromStr for Expression {
    type Err = ParseError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        Expression::parse(source)
    }
}

/// Shows the source text.
impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
