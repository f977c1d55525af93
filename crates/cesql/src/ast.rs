//! The syntax tree a parsed expression compiles to: everything that can be
//! decided without an event (literal values, lower-cased attribute names,
//! the resolved built-in function, the compiled LIKE pattern) is decided here
//! once, so evaluation only walks the tree.
//!
//! `!=`/`<>`, `NOT LIKE` and `NOT IN` do not appear: the spec defines each as
//! `NOT (...)` of its positive form, and the parser builds exactly that.

use std::sync::Arc;

use super::functions::Builtin;
use super::like::LikePattern;
use super::value::{Type, Value};

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Literal(Value),
    /// A context attribute or extension, by lower-cased name.
    Attribute(Arc<str>),
    Exists(Arc<str>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    /// AND, OR and XOR, which take Boolean operands and short-circuit.
    Logical {
        op: LogicalOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// The other binary operators, which evaluate both operands.
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Like {
        operand: Box<Expr>,
        pattern: LikePattern,
    },
    In {
        operand: Box<Expr>,
        set: Vec<Expr>,
    },
    Call {
        callee: Callee,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogicalOp {
    And,
    Or,
    Xor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    /// `=`, overloaded for all three types.
    Equal,
    /// Integer comparisons.
    Compare(Comparison),
    Arithmetic(Arithmetic),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arithmetic {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

impl BinaryOp {
    pub(super) fn result_type(self) -> Type {
        match self {
            BinaryOp::Equal | BinaryOp::Compare(_) => Type::Boolean,
            BinaryOp::Arithmetic(_) => Type::Integer,
        }
    }
}

impl Arithmetic {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Arithmetic::Add => "+",
            Arithmetic::Subtract => "-",
            Arithmetic::Multiply => "*",
            Arithmetic::Divide => "/",
            Arithmetic::Remainder => "%",
        }
    }
}

/// The target of a function call, resolved by name and arity at parse time.
#[derive(Debug, Clone)]
pub(super) enum Callee {
    Builtin(Builtin),
    /// No function has this name and arity. This is an evaluation error, not a
    /// parse error (spec 3.5: the invocation yields `false` and a
    /// MissingFunctionError), so the expression still compiles.
    Missing {
        name: Arc<str>,
        arity: usize,
    },
}

impl Expr {
    /// The first call, in source order, of a function no built-in has.
    pub(super) fn missing_function(&self) -> Option<(&str, usize)> {
        match self {
            Expr::Literal(_) | Expr::Attribute(_) | Expr::Exists(_) => None,
            Expr::Not(inner) | Expr::Negate(inner) => inner.missing_function(),
            Expr::Logical { left, right, .. } | Expr::Binary { left, right, .. } => {
                left.missing_function().or_else(|| right.missing_function())
            }
            Expr::Like { operand, .. } => operand.missing_function(),
            Expr::In { operand, set } => operand
                .missing_function()
                .or_else(|| set.iter().find_map(Expr::missing_function)),
            Expr::Call { callee, args } => match callee {
                Callee::Missing { name, arity } => Some((name, *arity)),
                Callee::Builtin(_) => args.iter().find_map(Expr::missing_function),
            },
        }
    }
}
