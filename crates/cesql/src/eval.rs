//! Evaluation of a compiled expression against one event.
//!
//! CESQL is total: every node yields a value even when something goes wrong,
//! and errors are collected next to it (spec 3.3). Two rules decide the value
//! in the presence of errors; together they are what the conformance suite
//! expects:
//!
//! 1. An error an operator or function raises *itself* (a failed implicit
//!    cast, a division by zero, a negative `LEFT` count) comes with a defined
//!    value, and the operator carries on with it: a failed cast yields the
//!    target type's zero value, so `NOT 10` is `true` plus a cast error, and
//!    `5 / 0` is `0` plus a math error.
//! 2. If an *operand* reported any error, the operator does not apply itself:
//!    it yields the zero value of its return type and evaluates no further
//!    operands. So `true AND (1 != 1 / 0)` is `false`, and `missing / 0`
//!    reports the missing attribute but no division by zero (spec 3.2).
//!
//! An attribute reference has no declared type, so a missing attribute on
//! its own evaluates to `false` (spec 3.2: assume Boolean).
//!
//! Strings are passed around as `Cow`s borrowed from the expression or the
//! event; a filter such as `type = 'x' AND source LIKE 'https://%'`
//! evaluates without allocating.
//!
//! Work on strings (comparing, matching, counting, parsing, building) is
//! charged to a [`Budget`] before or while it is done; running out is a
//! [`LimitExceeded`] error, and rule 2 then unwinds the rest of the
//! evaluation without doing more work (see the `limits` module).

use std::cmp::Ordering;

use super::Attributes;
use super::ast::{Arithmetic, BinaryOp, Callee, Comparison, Expr, LogicalOp};
use super::cast;
use super::error::{EvalError, LimitExceeded};
use super::limits::Budget;
use super::value::{Type, ValueRef};

pub(super) struct Evaluator<'a, 'e, E: ?Sized> {
    event: &'a E,
    errors: &'e mut Vec<EvalError>,
    budget: &'e mut Budget,
    /// The budget ran out (and that was reported): no more string work.
    exhausted: bool,
}

impl<'a, 'e, E: Attributes + ?Sized> Evaluator<'a, 'e, E> {
    pub(super) fn new(
        event: &'a E,
        errors: &'e mut Vec<EvalError>,
        budget: &'e mut Budget,
    ) -> Self {
        Evaluator {
            event,
            errors,
            budget,
            exhausted: false,
        }
    }

    /// Units of string work spent so far.
    #[cfg(test)]
    pub(super) fn work_used(&self) -> u64 {
        self.budget.used()
    }

    pub(super) fn eval(&mut self, expr: &'a Expr) -> ValueRef<'a> {
        match expr {
            Expr::Literal(value) => value.as_value_ref(),
            Expr::Attribute(name) => self.event.attribute(name).unwrap_or_else(|| {
                self.report(EvalError::MissingAttribute { name: name.clone() });
                Type::Boolean.zero()
            }),
            Expr::Exists(name) => ValueRef::Boolean(self.event.has_attribute(name)),
            Expr::Not(operand) => match self.operand(operand) {
                Some(value) => ValueRef::Boolean(!self.boolean(value)),
                None => Type::Boolean.zero(),
            },
            Expr::Negate(operand) => match self.operand(operand) {
                Some(value) => {
                    let value = self.integer(value);
                    // -i32::MIN does not fit; saturate like ABS does (spec 3.5.2).
                    ValueRef::Integer(value.checked_neg().unwrap_or_else(|| {
                        self.report(EvalError::Overflow { operator: "-" });
                        i32::MAX
                    }))
                }
                None => Type::Integer.zero(),
            },
            Expr::Logical { op, left, right } => ValueRef::Boolean(self.logical(*op, left, right)),
            Expr::Binary { op, left, right } => self.binary(*op, left, right),
            Expr::Like { operand, pattern } => match self.operand(operand) {
                Some(value) if !self.exhausted => {
                    let text = cast::to_string(value);
                    match pattern.matches(&text, self.budget) {
                        Ok(matched) => ValueRef::Boolean(matched),
                        Err(limit) => {
                            self.run_out(limit);
                            Type::Boolean.zero()
                        }
                    }
                }
                Some(_) => Type::Boolean.zero(),
                None => Type::Boolean.zero(),
            },
            Expr::In { operand, set } => ValueRef::Boolean(self.is_in(operand, set)),
            Expr::Call {
                callee: Callee::Builtin(builtin),
                args,
            } => self.call(*builtin, args),
            Expr::Call {
                callee: Callee::Missing { name, arity },
                ..
            } => {
                self.report(EvalError::MissingFunction {
                    name: name.clone(),
                    arity: *arity,
                });
                Type::Boolean.zero()
            }
        }
    }

    /// Evaluates an operand; `None` if it reported an error (rule 2 above).
    pub(super) fn operand(&mut self, expr: &'a Expr) -> Option<ValueRef<'a>> {
        let before = self.errors.len();
        let value = self.eval(expr);
        (self.errors.len() == before).then_some(value)
    }

    pub(super) fn report(&mut self, error: EvalError) {
        self.errors.push(error);
    }

    /// Takes `units` of string work from the budget; `None` once it is
    /// spent (reported the first time).
    pub(super) fn charge(&mut self, units: usize) -> Option<()> {
        if self.exhausted {
            return None;
        }
        match self.budget.spend(units) {
            Ok(()) => Some(()),
            Err(limit) => {
                self.run_out(limit);
                None
            }
        }
    }

    fn run_out(&mut self, limit: LimitExceeded) {
        self.exhausted = true;
        self.report(limit.into());
    }

    /// Charges parsing `value` as a number: linear in a string's length
    /// (`'000…01'` is a valid Integer).
    pub(super) fn charge_parse(&mut self, value: &ValueRef<'_>) -> Option<()> {
        match value {
            ValueRef::String(s) => self.charge(s.len()),
            ValueRef::Integer(_) | ValueRef::Boolean(_) => Some(()),
        }
    }

    /// Implicit cast to Integer; `0` and a cast error if impossible.
    pub(super) fn integer(&mut self, value: ValueRef<'_>) -> i32 {
        if self.charge_parse(&value).is_none() {
            return 0;
        }
        cast::to_integer(value).unwrap_or_else(|e| {
            self.report(e);
            0
        })
    }

    /// String equality, charged by the bytes it may compare.
    fn same_string(&mut self, left: &str, right: &str) -> bool {
        self.charge(left.len().min(right.len())).is_some() && left == right
    }

    /// Implicit cast to Boolean; `false` and a cast error if impossible.
    fn boolean(&mut self, value: ValueRef<'_>) -> bool {
        cast::coerce_boolean(value).unwrap_or_else(|e| {
            self.report(e);
            false
        })
    }

    /// AND and OR never evaluate their right operand once the left one
    /// decides the result (spec 3.4.2); XOR always needs both.
    fn logical(&mut self, op: LogicalOp, left: &'a Expr, right: &'a Expr) -> bool {
        let Some(left) = self.operand(left) else {
            return false;
        };
        let left = self.boolean(left);
        match (op, left) {
            (LogicalOp::And, false) => return false,
            (LogicalOp::Or, true) => return true,
            _ => {}
        }
        let Some(right) = self.operand(right) else {
            return false;
        };
        let right = self.boolean(right);
        match op {
            // The left operand did not decide, so the right one does.
            LogicalOp::And | LogicalOp::Or => right,
            LogicalOp::Xor => left != right,
        }
    }

    fn binary(&mut self, op: BinaryOp, left: &'a Expr, right: &'a Expr) -> ValueRef<'a> {
        let zero = op.result_type().zero();
        let Some(left) = self.operand(left) else {
            return zero;
        };
        let Some(right) = self.operand(right) else {
            return zero;
        };
        match op {
            BinaryOp::Equal => ValueRef::Boolean(self.equal(left, right)),
            BinaryOp::Compare(comparison) => {
                let left = self.integer(left);
                let ordering = left.cmp(&self.integer(right));
                ValueRef::Boolean(compare(comparison, ordering))
            }
            BinaryOp::Arithmetic(op) => {
                let left = self.integer(left);
                let right = self.integer(right);
                ValueRef::Integer(arithmetic(op, left, right).unwrap_or_else(|e| {
                    self.report(e);
                    0
                }))
            }
        }
    }

    /// `=` is overloaded for all three types; the right operand's type picks
    /// the overload and the left operand is cast to it (spec 3.7), so
    /// `'TRUE' = true` holds but `true = 'TRUE'` does not.
    fn equal(&mut self, left: ValueRef<'a>, right: ValueRef<'a>) -> bool {
        match right {
            ValueRef::String(right) => self.same_string(&cast::to_string(left), &right),
            ValueRef::Integer(right) => self.integer(left) == right,
            ValueRef::Boolean(right) => self.boolean(left) == right,
        }
    }

    /// `x IN (y1, ...)` compares `x` with each element as `=` does, except
    /// that `x`'s type is the target type (spec 3.4.5). Casting the elements
    /// is the operator's own work (rule 1); it stops at the first match, as
    /// the equivalent chain of ORs would.
    fn is_in(&mut self, operand: &'a Expr, set: &'a [Expr]) -> bool {
        let Some(needle) = self.operand(operand) else {
            return false;
        };
        for element in set {
            let Some(element) = self.operand(element) else {
                return false;
            };
            let found = match &needle {
                ValueRef::String(needle) => self.same_string(&cast::to_string(element), needle),
                ValueRef::Integer(needle) => self.integer(element) == *needle,
                ValueRef::Boolean(needle) => self.boolean(element) == *needle,
            };
            if found {
                return true;
            }
        }
        false
    }
}

fn compare(comparison: Comparison, ordering: Ordering) -> bool {
    match comparison {
        Comparison::Less => ordering.is_lt(),
        Comparison::LessOrEqual => ordering.is_le(),
        Comparison::Greater => ordering.is_gt(),
        Comparison::GreaterOrEqual => ordering.is_ge(),
    }
}

/// 32-bit arithmetic: overflow and division by zero are math errors. The
/// remainder of `i32::MIN % -1` is representable (0), so it is not one.
fn arithmetic(op: Arithmetic, left: i32, right: i32) -> Result<i32, EvalError> {
    let operator = op.symbol();
    let result = match op {
        Arithmetic::Add => left.checked_add(right),
        Arithmetic::Subtract => left.checked_sub(right),
        Arithmetic::Multiply => left.checked_mul(right),
        Arithmetic::Divide | Arithmetic::Remainder if right == 0 => {
            return Err(EvalError::DivisionByZero { operator });
        }
        Arithmetic::Divide => left.checked_div(right),
        Arithmetic::Remainder => Some(left.wrapping_rem(right)),
    };
    result.ok_or(EvalError::Overflow { operator })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_truncates_and_checks_overflow() {
        assert_eq!(arithmetic(Arithmetic::Divide, 5, 3), Ok(1));
        assert_eq!(arithmetic(Arithmetic::Divide, -5, 3), Ok(-1));
        assert_eq!(arithmetic(Arithmetic::Remainder, -5, 3), Ok(-2));
        assert_eq!(arithmetic(Arithmetic::Remainder, 5, -3), Ok(2));
        assert_eq!(arithmetic(Arithmetic::Remainder, i32::MIN, -1), Ok(0));
        assert_eq!(
            arithmetic(Arithmetic::Divide, i32::MIN, -1),
            Err(EvalError::Overflow { operator: "/" })
        );
        assert_eq!(
            arithmetic(Arithmetic::Add, i32::MAX, 1),
            Err(EvalError::Overflow { operator: "+" })
        );
        assert_eq!(
            arithmetic(Arithmetic::Subtract, i32::MIN, 1),
            Err(EvalError::Overflow { operator: "-" })
        );
        assert_eq!(
            arithmetic(Arithmetic::Multiply, 65_536, 65_536),
            Err(EvalError::Overflow { operator: "*" })
        );
        assert_eq!(
            arithmetic(Arithmetic::Remainder, 1, 0),
            Err(EvalError::DivisionByZero { operator: "%" })
        );
    }
}
