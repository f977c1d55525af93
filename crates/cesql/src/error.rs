//! The two error families of CESQL: [`ParseError`] (the expression text is
//! not valid CESQL, or is over a size limit; nothing can be evaluated) and
//! [`EvalError`] (something went wrong while evaluating against one event;
//! the evaluation still produced a value, and the error is reported next to
//! it). [`LimitExceeded`] is the one evaluation error the spec does not define:
//! the evaluation went over a bound of the `limits` module.

use std::fmt;
use std::sync::Arc;

use super::value::Type;

/// Why an expression could not be parsed, and where.
///
/// `Display` reads `column N: <what>`, with a 1-based character column, so it
/// can be shown as is to whoever wrote the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
    column: usize,
}

impl ParseError {
    /// `offset` is a byte offset into `source`; the column is derived from it.
    pub(super) fn new(kind: ParseErrorKind, source: &str, offset: usize) -> Self {
        let offset = offset.min(source.len());
        // `get` rather than indexing: an offset that is not on a character
        // boundary would be a lexer bug, and must not turn into a panic here.
        let column = source
            .get(..offset)
            .map_or(offset, |prefix| prefix.chars().count())
            + 1;
        ParseError {
            kind,
            offset,
            column,
        }
    }

    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Byte offset into the expression text where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// 1-based character column where the problem was found.
    pub fn column(&self) -> usize {
        self.column
    }
}

/// What was wrong with the expression text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("unexpected character `{0}`")]
    UnexpectedCharacter(char),
    #[error("string literal is not terminated")]
    UnterminatedString,
    #[error("integer literal {0} does not fit in a 32-bit signed integer")]
    IntegerOutOfRange(String),
    #[error(
        "`{0}` is not a valid attribute name (lower-case letters and digits only) nor a function call"
    )]
    InvalidIdentifier(String),
    #[error("`{0}` is not a valid function name (letters and `_`, starting with a letter)")]
    InvalidFunctionName(String),
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("expression is nested more than {0} levels deep (the limit)")]
    TooDeep(usize),
    #[error("expression is {length} bytes long; the limit is {limit} bytes")]
    TooLong { length: usize, limit: usize },
    #[error("expression has more than {0} operands, operators and function calls (the limit)")]
    TooManyNodes(usize),
}

/// The kind of an [`EvalError`], named after the error types of spec 3.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Math,
    Cast,
    MissingAttribute,
    MissingFunction,
    FunctionEvaluation,
    /// Not a spec error type: the evaluation went over one of our limits.
    Limit,
}

impl ErrorKind {
    /// A stable snake_case name, suitable for log fields and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Math => "math",
            ErrorKind::Cast => "cast",
            ErrorKind::MissingAttribute => "missing_attribute",
            ErrorKind::MissingFunction => "missing_function",
            ErrorKind::FunctionEvaluation => "function_evaluation",
            ErrorKind::Limit => "limit",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error raised while evaluating an expression against one event.
///
/// Names are `Arc<str>` shared with the compiled expression so that reporting
/// a missing attribute (a common outcome for a filter) does not allocate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("attribute `{name}` is not present on the event")]
    MissingAttribute { name: Arc<str> },
    #[error("cannot cast {value} ({from}) to {to}")]
    Cast {
        /// The offending value, rendered as a literal and truncated.
        value: String,
        from: Type,
        to: Type,
    },
    #[error("division by zero in `{operator}`")]
    DivisionByZero { operator: &'static str },
    #[error("integer overflow in `{operator}`")]
    Overflow { operator: &'static str },
    #[error("no function {name} taking {arity} argument(s)")]
    MissingFunction { name: Arc<str>, arity: usize },
    #[error("{function}: {reason}")]
    FunctionEvaluation {
        function: &'static str,
        reason: &'static str,
    },
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
}

impl EvalError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EvalError::MissingAttribute { .. } => ErrorKind::MissingAttribute,
            EvalError::Cast { .. } => ErrorKind::Cast,
            EvalError::DivisionByZero { .. } | EvalError::Overflow { .. } => ErrorKind::Math,
            EvalError::MissingFunction { .. } => ErrorKind::MissingFunction,
            EvalError::FunctionEvaluation { .. } => ErrorKind::FunctionEvaluation,
            EvalError::Limit(_) => ErrorKind::Limit,
        }
    }
}

/// An evaluation stopped because it would have gone over a limit of the
/// `limits` module. The expression does not match the event; unlike the
/// spec's errors this says nothing about the event's content, only that
/// deciding would cost more than meshbroker allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    #[error("{function} would build a string of more than {limit} bytes (the limit)")]
    StringLength {
        function: &'static str,
        limit: usize,
    },
    #[error("the evaluation needs more than {limit} units of work (the limit)")]
    Work { limit: u64 },
}

impl LimitExceeded {
    /// A stable snake_case name of the limit, suitable for log fields and
    /// metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitExceeded::StringLength { .. } => "string_length",
            LimitExceeded::Work { .. } => "work",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_reports_a_character_column() {
        // "é" is two bytes: the column must count characters, not bytes.
        let err = ParseError::new(ParseErrorKind::UnexpectedCharacter('#'), "'é' #", 5);
        assert_eq!(err.offset(), 5);
        assert_eq!(err.column(), 5);
        assert_eq!(err.to_string(), "column 5: unexpected character `#`");
    }

    #[test]
    fn parse_error_tolerates_offsets_off_a_char_boundary() {
        let err = ParseError::new(ParseErrorKind::UnterminatedString, "é", 1);
        assert_eq!(err.column(), 2);
    }
}
