//! Every bound on what one expression may cost, in one place.
//!
//! The size of an expression is checked when it is parsed: one over a limit is
//! refused with a [`ParseError`](super::ParseError) naming the limit, so a
//! Trigger carrying it is refused when it is written. The work and memory of
//! evaluating it against one event are checked as it runs: an evaluation that
//! would go over a limit stops with [`LimitExceeded`] (an error the CESQL spec
//! does not know) and the expression does not match.
//!
//! # The worst case of one evaluation
//!
//! Parsing bounds the tree to [`MAX_NODES`] nodes, [`MAX_TREE_DEPTH`] deep
//! (which bounds the evaluator's recursion), and CESQL has no loops, so an
//! evaluation visits each node at most once. A node's work is O(1) except
//! where it reads or builds strings; all of that is linear in the strings
//! involved (LIKE included: see the `like` module) and is charged to a
//! budget of [`MAX_WORK`] units, before or while it is done. So, whatever
//! the event and the expression:
//!
//! - time: at most `MAX_NODES` node visits plus `MAX_WORK` units of string
//!   work. `evaluation_work_is_bounded_whatever_the_input` (in `tests.rs`)
//!   counts it for the costliest expression of each kind the size limits let
//!   through, against 1 MiB attributes; timed in a release build, the worst
//!   (LIKE with `_`, about 2.6 ns a unit) took 22 ms of one core, most under
//!   8 ms;
//! - memory: no string built is longer than [`MAX_STRING_BYTES`], and every
//!   byte built is charged, so the strings one evaluation builds add up to at
//!   most `MAX_WORK` bytes (plus a case mapping's transient copy).
//!
//! For comparison: the CloudEvents SDKs (Go, Java) set no limits; cel-go, the
//! other filter language in this space, refuses expressions over 100,000 code
//! points or 250 levels of recursion and meters evaluation cost, which
//! Kubernetes caps at 1,000,000 units (about 10 MB of strings scanned) per
//! expression; SQLite caps LIKE patterns at 50,000 bytes and expression trees
//! at 1,000 levels.

use super::error::LimitExceeded;

/// Longest expression text, in bytes. The filters in Knative's documentation
/// and the CloudEvents examples are under 200 bytes; an `IN` list of a hundred
/// event types is about 4 KiB. Twice that leaves room for any hand-written
/// filter while keeping LIKE patterns (part of the text) and the compiled form
/// small. Lower than cel-go's 100,000 code points because CESQL has no static
/// cost estimate to catch a costly expression at write time.
pub const MAX_SOURCE_BYTES: usize = 8 * 1024;

/// Deepest nesting of parentheses, prefix operators (`NOT`, `-`) and function
/// arguments. Each level costs the parser about eight stack frames; 64 levels
/// is far beyond what anyone writes by hand, and a hostile `((((…` or
/// `NOT NOT NOT …` is refused long before the stack is at risk.
pub const MAX_NESTING: usize = 64;

/// Deepest syntax tree. Long `a OR b OR …` chains deepen the tree without
/// nesting; evaluation and drop recurse over it, so its depth is what bounds
/// their stack use. Close to cel-go's parser recursion limit of 250.
pub const MAX_TREE_DEPTH: usize = 256;

/// Most nodes (literals, attributes, operators, function calls) in one
/// expression: each is visited at most once per evaluation, so this bounds the
/// per-event work that is not string work. A hundred-element `IN` list is
/// about a hundred nodes.
pub const MAX_NODES: usize = 1024;

/// Longest string a function may build (`CONCAT`, `CONCAT_WS`, `UPPER`,
/// `LOWER`). It equals the dataplane's default largest event
/// (`--max-event-bytes`, 1 MiB), so case-mapping or slicing any attribute of an
/// accepted event works, while concatenating several large ones into
/// something bigger than any event is refused.
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Units of string work one evaluation may do; a unit is about one byte read,
/// compared or written (one comparison of the LIKE matcher, one byte of a
/// string built, searched, counted or parsed). Eight times the largest string
/// a function may build: a filter may read every attribute of the largest
/// event several times over. At the measured worst (LIKE with `_` segments,
/// about 2.6 ns a unit) that is 22 ms of one core; Kubernetes allows a CEL
/// expression about 0.1 s.
pub const MAX_WORK: u64 = 8 * 1024 * 1024;

/// The string work left to an evaluation, or to several that share it: a filter
/// made of many expressions can give them one budget
/// ([`Expression::try_matches_within`](super::Expression::try_matches_within)),
/// so that together they cost no more than one may.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
}

impl Default for Budget {
    /// The budget of one evaluation: [`MAX_WORK`].
    fn default() -> Self {
        Budget::new(MAX_WORK)
    }
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget { limit, used: 0 }
    }

    /// Takes `units` of work, or fails (taking none) when that would go over.
    pub(super) fn spend(&mut self, units: usize) -> Result<(), LimitExceeded> {
        let units = u64::try_from(units).unwrap_or(u64::MAX);
        match self.used.checked_add(units) {
            Some(used) if used <= self.limit => {
                self.used = used;
                Ok(())
            }
            _ => Err(LimitExceeded::Work { limit: self.limit }),
        }
    }

    /// Units spent so far.
    pub fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_what_would_go_over_and_keeps_what_was_spent() {
        let mut budget = Budget::new(10);
        assert_eq!(budget.spend(4), Ok(()));
        assert_eq!(budget.spend(7), Err(LimitExceeded::Work { limit: 10 }));
        assert_eq!(budget.used(), 4);
        assert_eq!(budget.spend(6), Ok(()));
        assert_eq!(budget.spend(1), Err(LimitExceeded::Work { limit: 10 }));
        assert_eq!(Budget::new(u64::MAX).spend(usize::MAX), Ok(()));
    }
}
