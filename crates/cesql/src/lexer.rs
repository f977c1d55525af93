//! Turns expression text into tokens with byte spans.
//!
//! Words (keywords, attribute names, function names) are left unclassified:
//! whether `abc` is an attribute or a function depends on whether `(`
//! follows, which is the parser's business.
//!
//! String literals (spec 2.2) are delimited by `'` or `"`; inside, a backslash
//! followed by the delimiter stands for the delimiter. Any other backslash is
//! kept verbatim together with the character after it, so `\%` and `\_`
//! reach LIKE patterns intact and `'a\\'` is a complete literal (`a\\`).

use std::borrow::Cow;

use super::error::{ParseError, ParseErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind<'s> {
    /// A run of ASCII letters, digits and `_` that is not all digits.
    Word(&'s str),
    /// A run of ASCII digits; saturates at `u64::MAX` (the parser range-checks).
    Integer(u64),
    String(Cow<'s, str>),
    LeftParen,
    RightParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token<'s> {
    pub(super) kind: TokenKind<'s>,
    /// Byte offsets into the source.
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Tokenizes the whole expression; the last token is always `Eof`.
pub(super) fn tokenize(source: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let single = |kind| Token {
            kind,
            start,
            end: start + 1,
        };
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => single(TokenKind::LeftParen),
            ')' => single(TokenKind::RightParen),
            ',' => single(TokenKind::Comma),
            '+' => single(TokenKind::Plus),
            '-' => single(TokenKind::Minus),
            '*' => single(TokenKind::Star),
            '/' => single(TokenKind::Slash),
            '%' => single(TokenKind::Percent),
            '=' => single(TokenKind::Equal),
            '!' | '<' | '>' => {
                let second = chars.peek().map(|&(_, next)| next);
                let (kind, width) = match (c, second) {
                    ('!', Some('=')) | ('<', Some('>')) => (TokenKind::NotEqual, 2),
                    ('<', Some('=')) => (TokenKind::LessOrEqual, 2),
                    ('>', Some('=')) => (TokenKind::GreaterOrEqual, 2),
                    ('<', _) => (TokenKind::Less, 1),
                    ('>', _) => (TokenKind::Greater, 1),
                    _ => return Err(unexpected(source, start, c)),
                };
                if width == 2 {
                    chars.next();
                }
                Token {
                    kind,
                    start,
                    end: start + width,
                }
            }
            '\'' | '"' => {
                let (value, end) = string_literal(source, start, c)?;
                // Resume after the closing delimiter.
                while chars.next_if(|&(i, _)| i < end).is_some() {}
                Token {
                    kind: TokenKind::String(value),
                    start,
                    end,
                }
            }
            c if is_word_char(c) => {
                let mut end = start + 1;
                while let Some((i, next)) = chars.next_if(|&(_, next)| is_word_char(next)) {
                    end = i + next.len_utf8();
                }
                let text = source.get(start..end).unwrap_or_default();
                let kind = if text.bytes().all(|b| b.is_ascii_digit()) {
                    TokenKind::Integer(text.bytes().fold(0u64, |acc, digit| {
                        acc.saturating_mul(10)
                            .saturating_add(u64::from(digit - b'0'))
                    }))
                } else {
                    TokenKind::Word(text)
                };
                Token { kind, start, end }
            }
            other => return Err(unexpected(source, start, other)),
        };
        tokens.push(token);
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        start: source.len(),
        end: source.len(),
    });
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn unexpected(source: &str, offset: usize, c: char) -> ParseError {
    ParseError::new(ParseErrorKind::UnexpectedCharacter(c), source, offset)
}

/// Reads the literal opening at `start`; returns its value and the byte
/// offset just past the closing delimiter.
fn string_literal(
    source: &str,
    start: usize,
    delimiter: char,
) -> Result<(Cow<'_, str>, usize), ParseError> {
    let body_start = start + delimiter.len_utf8();
    let body = source.get(body_start..).unwrap_or_default();
    // Only an escaped delimiter changes the text; borrow until one shows up.
    let mut owned: Option<String> = None;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == delimiter {
            let end = body_start + i + c.len_utf8();
            let value = match owned {
                Some(s) => Cow::Owned(s),
                None => Cow::Borrowed(body.get(..i).unwrap_or_default()),
            };
            return Ok((value, end));
        }
        if c != '\\' {
            if let Some(s) = owned.as_mut() {
                s.push(c);
            }
            continue;
        }
        match chars.next() {
            Some((_, escaped)) if escaped == delimiter => {
                owned
                    .get_or_insert_with(|| body.get(..i).unwrap_or_default().to_owned())
                    .push(escaped);
            }
            Some((_, other)) => {
                if let Some(s) = owned.as_mut() {
                    s.push('\\');
                    s.push(other);
                }
            }
            None => break,
        }
    }
    Err(ParseError::new(
        ParseErrorKind::UnterminatedString,
        source,
        start,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind<'_>> {
        tokenize(source)
            .expect("tokenizes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn operators_and_words() {
        use TokenKind::*;
        assert_eq!(
            kinds("a<>b != c<=d>=e<f>g=(1,2)+-*/%"),
            vec![
                Word("a"),
                NotEqual,
                Word("b"),
                NotEqual,
                Word("c"),
                LessOrEqual,
                Word("d"),
                GreaterOrEqual,
                Word("e"),
                Less,
                Word("f"),
                Greater,
                Word("g"),
                Equal,
                LeftParen,
                Integer(1),
                Comma,
                Integer(2),
                RightParen,
                Plus,
                Minus,
                Star,
                Slash,
                Percent,
                Eof,
            ]
        );
    }

    #[test]
    fn digits_are_integers_but_mixed_runs_are_words() {
        use TokenKind::*;
        assert_eq!(
            kinds("007 1abc CONCAT_WS"),
            vec![Integer(7), Word("1abc"), Word("CONCAT_WS"), Eof]
        );
        assert_eq!(
            kinds("99999999999999999999999"),
            vec![Integer(u64::MAX), Eof]
        );
    }

    #[test]
    fn string_escapes() {
        let value = |source: &str| match kinds(source).into_iter().next() {
            Some(TokenKind::String(s)) => s.into_owned(),
            other => panic!("expected a string, got {other:?}"),
        };
        assert_eq!(value(r#"'a"b\'c'"#), r#"a"b'c"#);
        assert_eq!(value(r#""a'b\"c""#), r#"a'b"c"#);
        assert_eq!(value(r"'ab\c'"), r"ab\c");
        assert_eq!(value(r"'a\_b\%'"), r"a\_b\%");
        assert_eq!(value(r"'a\\'"), r"a\\");
        assert_eq!(value(r"'it\'s \%'"), r"it's \%");
        assert_eq!(value("'日本'"), "日本");
        assert_eq!(value("''"), "");
    }

    #[test]
    fn spans_cover_the_token_text() {
        let tokens = tokenize("  'é' >= x").expect("tokenizes");
        let spans: Vec<_> = tokens.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(spans, vec![(2, 6), (7, 9), (10, 11), (11, 11)]);
    }

    #[test]
    fn lexical_errors_point_at_the_culprit() {
        let err = tokenize("a = 'open").expect_err("unterminated");
        assert_eq!(err.kind(), &ParseErrorKind::UnterminatedString);
        assert_eq!(err.column(), 5);
        let err = tokenize(r"'trailing\").expect_err("unterminated");
        assert_eq!(err.kind(), &ParseErrorKind::UnterminatedString);
        let err = tokenize("a ! b").expect_err("lone bang");
        assert_eq!(err.kind(), &ParseErrorKind::UnexpectedCharacter('!'));
        assert_eq!(err.column(), 3);
        let err = tokenize("é").expect_err("non-ascii word");
        assert_eq!(err.kind(), &ParseErrorKind::UnexpectedCharacter('é'));
    }
}
