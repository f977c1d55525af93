//! Recursive-descent parser from tokens to the syntax tree.
//!
//! Precedence follows spec 3.6, loosest first; operators of equal precedence
//! group left to right:
//!
//! ```text
//! expression     := comparison (("AND" | "OR" | "XOR") comparison)*
//! comparison     := additive (("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") additive)*
//! additive       := multiplicative (("+" | "-") multiplicative)*
//! multiplicative := postfix (("*" | "/" | "%") postfix)*
//! postfix        := unary ("NOT"? "LIKE" string | "NOT"? "IN" "(" expression ("," expression)* ")")*
//! unary          := "NOT" unary | "-" unary | "+" integer | "EXISTS" identifier | primary
//! primary        := integer | string | "TRUE" | "FALSE" | identifier
//!                 | function "(" (expression ("," expression)*)? ")" | "(" expression ")"
//! ```
//!
//! So AND, OR and XOR share one level (`a OR b AND c` is `(a OR b) AND c`),
//! and LIKE/IN bind tighter than arithmetic, as the spec lists them.
//!
//! Keywords, function names and attribute names are case-insensitive;
//! attribute names are lower-cased here (CloudEvents attribute names are
//! lower-case, and the conformance suite writes `EXISTS SOURCE`).
//!
//! A `-` directly before an integer literal is folded into it, which is what
//! makes `-2147483648` expressible.
//!
//! The size limits of the `limits` module are enforced here: the text's
//! length before anything else, nesting as the parser recurses (so hostile
//! input cannot exhaust the stack, during parsing and later during evaluation
//! and drop, which recurse over the tree), and the tree's depth and node count
//! as it is built.

use std::sync::Arc;

use super::ast::{Arithmetic, BinaryOp, Callee, Comparison, Expr, LogicalOp};
use super::error::{ParseError, ParseErrorKind};
use super::functions::Builtin;
use super::lexer::{Token, TokenKind, tokenize};
use super::like::LikePattern;
use super::limits::{MAX_NESTING, MAX_NODES, MAX_SOURCE_BYTES, MAX_TREE_DEPTH};
use super::value::Value;

const KEYWORDS: [&str; 9] = [
    "AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE",
];

/// How much of an offending token an error message quotes.
const MAX_QUOTED_CHARS: usize = 32;

pub(super) fn parse(source: &str) -> Result<Expr, ParseError> {
    if source.len() > MAX_SOURCE_BYTES {
        let kind = ParseErrorKind::TooLong {
            length: source.len(),
            limit: MAX_SOURCE_BYTES,
        };
        return Err(ParseError::new(kind, source, MAX_SOURCE_BYTES));
    }
    let mut parser = Parser {
        source,
        tokens: tokenize(source)?,
        position: 0,
        nesting: 0,
        nodes: 0,
    };
    let parsed = parser.expression()?;
    if parser.peek().kind != TokenKind::Eof {
        return Err(parser.unexpected("an operator or the end of the expression"));
    }
    Ok(parsed.expr)
}

/// A subtree and its depth.
struct Parsed {
    expr: Expr,
    depth: usize,
}

struct Parser<'s> {
    source: &'s str,
    /// Always ends with `Eof`; `position` never moves past it.
    tokens: Vec<Token<'s>>,
    position: usize,
    nesting: usize,
    /// Nodes built so far.
    nodes: usize,
}

const EOF: Token<'static> = Token {
    kind: TokenKind::Eof,
    start: 0,
    end: 0,
};

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token<'s> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token<'s> {
        self.tokens
            .get(self.position + ahead)
            .or(self.tokens.last())
            .unwrap_or(&EOF)
    }

    fn advance(&mut self) -> Token<'s> {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.position += 1;
        }
        token
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        is_keyword(self.peek(), keyword)
    }

    fn expect(
        &mut self,
        kind: TokenKind<'static>,
        expected: &'static str,
    ) -> Result<(), ParseError> {
        if self.peek().kind == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn error_at(&self, kind: ParseErrorKind, offset: usize) -> ParseError {
        ParseError::new(kind, self.source, offset)
    }

    /// "expected X, found <the current token>".
    fn unexpected(&self, expected: &'static str) -> ParseError {
        let token = self.peek();
        let found = if token.kind == TokenKind::Eof {
            "the end of the expression".to_owned()
        } else {
            format!("`{}`", quote(self.text(token)))
        };
        self.error_at(ParseErrorKind::Unexpected { expected, found }, token.start)
    }

    fn text(&self, token: &Token<'_>) -> &'s str {
        self.source.get(token.start..token.end).unwrap_or_default()
    }

    /// Guards recursion; paired with `ascend` on the success path (an error
    /// abandons the whole parse, so it needs no unwinding).
    fn descend(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error_at(ParseErrorKind::TooDeep(MAX_NESTING), self.peek().start));
        }
        Ok(())
    }

    fn ascend(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    /// Wraps `expr`, whose deepest child is `child_depth` deep (0 for a
    /// leaf); every node of the tree is built here, so it counts them.
    fn node(&mut self, expr: Expr, child_depth: usize, at: usize) -> Result<Parsed, ParseError> {
        let depth = child_depth + 1;
        if depth > MAX_TREE_DEPTH {
            return Err(self.error_at(ParseErrorKind::TooDeep(MAX_TREE_DEPTH), at));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error_at(ParseErrorKind::TooManyNodes(MAX_NODES), at));
        }
        Ok(Parsed { expr, depth })
    }

    fn leaf(&mut self, expr: Expr, at: usize) -> Result<Parsed, ParseError> {
        self.node(expr, 0, at)
    }

    /// Joins two subtrees with `build` (a binary node).
    fn join(
        &mut self,
        left: Parsed,
        right: Parsed,
        at: usize,
        build: impl FnOnce(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Parsed, ParseError> {
        let depth = left.depth.max(right.depth);
        let expr = build(Box::new(left.expr), Box::new(right.expr));
        self.node(expr, depth, at)
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        left: Parsed,
        right: Parsed,
        at: usize,
    ) -> Result<Parsed, ParseError> {
        self.join(left, right, at, |left, right| Expr::Binary {
            op,
            left,
            right,
        })
    }

    fn not(&mut self, operand: Parsed, at: usize) -> Result<Parsed, ParseError> {
        self.node(Expr::Not(Box::new(operand.expr)), operand.depth, at)
    }

    fn expression(&mut self) -> Result<Parsed, ParseError> {
        self.descend()?;
        let mut left = self.comparison()?;
        loop {
            let token = self.peek();
            let op = if is_keyword(token, "AND") {
                LogicalOp::And
            } else if is_keyword(token, "OR") {
                LogicalOp::Or
            } else if is_keyword(token, "XOR") {
                LogicalOp::Xor
            } else {
                break;
            };
            let at = self.advance().start;
            let right = self.comparison()?;
            left = self.join(left, right, at, |left, right| Expr::Logical {
                op,
                left,
                right,
            })?;
        }
        self.ascend();
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Parsed, ParseError> {
        let mut left = self.additive()?;
        loop {
            let (op, negated) = match self.peek().kind {
                TokenKind::Equal => (BinaryOp::Equal, false),
                // Spec 3.4.2 defines `x != y` as `NOT (x = y)`.
                TokenKind::NotEqual => (BinaryOp::Equal, true),
                TokenKind::Less => (BinaryOp::Compare(Comparison::Less), false),
                TokenKind::LessOrEqual => (BinaryOp::Compare(Comparison::LessOrEqual), false),
                TokenKind::Greater => (BinaryOp::Compare(Comparison::Greater), false),
                TokenKind::GreaterOrEqual => (BinaryOp::Compare(Comparison::GreaterOrEqual), false),
                _ => break,
            };
            let at = self.advance().start;
            let right = self.additive()?;
            left = self.binary(op, left, right, at)?;
            if negated {
                left = self.not(left, at)?;
            }
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Parsed, ParseError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek().kind {
                TokenKind::Plus => Arithmetic::Add,
                TokenKind::Minus => Arithmetic::Subtract,
                _ => break,
            };
            let at = self.advance().start;
            let right = self.multiplicative()?;
            left = self.binary(BinaryOp::Arithmetic(op), left, right, at)?;
        }
        Ok(left)
    }

    fn multiplicative(&mut self) -> Result<Parsed, ParseError> {
        let mut left = self.postfix()?;
        loop {
            let op = match self.peek().kind {
                TokenKind::Star => Arithmetic::Multiply,
                TokenKind::Slash => Arithmetic::Divide,
                TokenKind::Percent => Arithmetic::Remainder,
                _ => break,
            };
            let at = self.advance().start;
            let right = self.postfix()?;
            left = self.binary(BinaryOp::Arithmetic(op), left, right, at)?;
        }
        Ok(left)
    }

    /// `[NOT] LIKE 'pattern'` and `[NOT] IN (...)` after an operand.
    fn postfix(&mut self) -> Result<Parsed, ParseError> {
        let mut operand = self.unary()?;
        loop {
            let negated = self.peek_keyword("NOT")
                && (is_keyword(self.peek_at(1), "LIKE") || is_keyword(self.peek_at(1), "IN"));
            let at = self.peek().start;
            if negated {
                self.advance();
            }
            let expr = if self.peek_keyword("LIKE") {
                self.advance();
                let pattern = match &self.peek().kind {
                    TokenKind::String(pattern) => LikePattern::compile(pattern),
                    _ => {
                        return Err(
                            self.unexpected("a string literal (LIKE takes a literal pattern)")
                        );
                    }
                };
                self.advance();
                let like = Expr::Like {
                    operand: Box::new(operand.expr),
                    pattern,
                };
                self.node(like, operand.depth, at)?
            } else if self.peek_keyword("IN") {
                self.advance();
                self.expect(TokenKind::LeftParen, "`(` opening the IN set")?;
                let (set, depth) = self.list("an element of the IN set")?;
                let set_depth = depth.max(operand.depth);
                let is_in = Expr::In {
                    operand: Box::new(operand.expr),
                    set,
                };
                self.node(is_in, set_depth, at)?
            } else {
                break;
            };
            operand = if negated { self.not(expr, at)? } else { expr };
        }
        Ok(operand)
    }

    fn unary(&mut self) -> Result<Parsed, ParseError> {
        let at = self.peek().start;
        if self.peek_keyword("NOT") {
            self.advance();
            let operand = self.nested_unary()?;
            self.not(operand, at)
        } else if self.peek().kind == TokenKind::Minus {
            self.advance();
            if let TokenKind::Integer(magnitude) = self.peek().kind {
                let token = self.advance();
                let value = i64::try_from(magnitude)
                    .ok()
                    .and_then(|m| i32::try_from(-m).ok())
                    .ok_or_else(|| self.out_of_range(&token, at))?;
                self.leaf(Expr::Literal(Value::Integer(value)), at)
            } else {
                let operand = self.nested_unary()?;
                self.node(Expr::Negate(Box::new(operand.expr)), operand.depth, at)
            }
        } else if self.peek().kind == TokenKind::Plus {
            // Only as the sign of an integer literal (spec 2.2).
            self.advance();
            if !matches!(self.peek().kind, TokenKind::Integer(_)) {
                return Err(self.unexpected("an integer literal after a `+` sign"));
            }
            self.integer_literal(at)
        } else if self.peek_keyword("EXISTS") {
            self.advance();
            let name = self.identifier("an attribute name after EXISTS")?;
            self.leaf(Expr::Exists(name), at)
        } else {
            self.primary()
        }
    }

    /// The operand of a prefix operator: one more level of nesting.
    fn nested_unary(&mut self) -> Result<Parsed, ParseError> {
        self.descend()?;
        let operand = self.unary()?;
        self.ascend();
        Ok(operand)
    }

    fn primary(&mut self) -> Result<Parsed, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Integer(_) => self.integer_literal(token.start),
            TokenKind::String(value) => {
                self.advance();
                self.leaf(
                    Expr::Literal(Value::String(value.into_owned())),
                    token.start,
                )
            }
            TokenKind::LeftParen => {
                self.advance();
                let inner = self.expression()?;
                self.expect(TokenKind::RightParen, "`)`")?;
                Ok(inner)
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("TRUE") => {
                self.advance();
                self.leaf(Expr::Literal(Value::Boolean(true)), token.start)
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("FALSE") => {
                self.advance();
                self.leaf(Expr::Literal(Value::Boolean(false)), token.start)
            }
            TokenKind::Word(word) if self.peek_at(1).kind == TokenKind::LeftParen => {
                if KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    return Err(self.unexpected("an expression"));
                }
                self.call(word, token.start)
            }
            TokenKind::Word(_) => {
                let name = self.identifier("an expression")?;
                self.leaf(Expr::Attribute(name), token.start)
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// The current token is an integer; `at` is where its sign (if any) began.
    fn integer_literal(&mut self, at: usize) -> Result<Parsed, ParseError> {
        let token = self.advance();
        let TokenKind::Integer(value) = token.kind else {
            return Err(self.unexpected("an integer literal"));
        };
        let value = i32::try_from(value).map_err(|_| self.out_of_range(&token, at))?;
        self.leaf(Expr::Literal(Value::Integer(value)), at)
    }

    fn out_of_range(&self, token: &Token<'_>, at: usize) -> ParseError {
        let literal = self.source.get(at..token.end).unwrap_or_default();
        self.error_at(ParseErrorKind::IntegerOutOfRange(quote(literal)), at)
    }

    /// An attribute name: ASCII letters and digits, lower-cased.
    fn identifier(&mut self, expected: &'static str) -> Result<Arc<str>, ParseError> {
        let token = self.peek().clone();
        let TokenKind::Word(word) = token.kind else {
            return Err(self.unexpected(expected));
        };
        if KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) {
            return Err(self.unexpected(expected));
        }
        if !word.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(self.error_at(ParseErrorKind::InvalidIdentifier(quote(word)), token.start));
        }
        self.advance();
        Ok(Arc::from(word.to_ascii_lowercase()))
    }

    /// `name(args)`; the current token is the name, followed by `(`.
    fn call(&mut self, name: &'s str, at: usize) -> Result<Parsed, ParseError> {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
        if !valid {
            return Err(self.error_at(ParseErrorKind::InvalidFunctionName(quote(name)), at));
        }
        self.advance();
        self.expect(TokenKind::LeftParen, "`(`")?;
        let (args, depth) = if self.peek().kind == TokenKind::RightParen {
            self.advance();
            (Vec::new(), 0)
        } else {
            self.list("a function argument")?
        };
        let callee = match Builtin::resolve(name, args.len()) {
            Some(builtin) => Callee::Builtin(builtin),
            None => Callee::Missing {
                name: Arc::from(name.to_ascii_uppercase()),
                arity: args.len(),
            },
        };
        self.node(Expr::Call { callee, args }, depth, at)
    }

    /// `expression ("," expression)* ")"`, after the opening parenthesis.
    /// Returns the elements and the depth of the deepest.
    fn list(&mut self, what: &'static str) -> Result<(Vec<Expr>, usize), ParseError> {
        let mut items = Vec::new();
        let mut depth = 0;
        loop {
            if self.peek().kind == TokenKind::RightParen {
                return Err(self.unexpected(what));
            }
            let item = self.expression()?;
            depth = depth.max(item.depth);
            items.push(item.expr);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::RightParen => {
                    self.advance();
                    return Ok((items, depth));
                }
                _ => return Err(self.unexpected("`,` or `)`")),
            }
        }
    }
}

fn is_keyword(token: &Token<'_>, keyword: &str) -> bool {
    matches!(token.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
}

/// At most `MAX_QUOTED_CHARS` characters of `text`, for error messages.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let mut quoted: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        quoted.push('…');
    }
    quoted
}
