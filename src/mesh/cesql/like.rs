//! LIKE patterns (spec 3.4.3): compiled once at parse time, matched per event
//! without allocating or backtracking exponentially.
//!
//! `%` matches any run of characters, `_` exactly one character, `\%` and
//! `\_` the literal characters; any other backslash is an ordinary character
//! (so `'ab\c' LIKE 'ab\c'` holds, as the conformance suite requires).
//! Matching is case-sensitive and by Unicode scalar value.
//!
//! Most filter patterns are a prefix, a suffix or a substring (`'https://%'`,
//! `'%.error'`); those compile to a plain `str` operation.

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LikePattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General(Vec<Token>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    Char(char),
    /// `_`
    One,
    /// `%`
    Many,
}

impl LikePattern {
    pub(super) fn compile(pattern: &str) -> Self {
        let tokens = tokenize(pattern);
        // Split into: leading `%`, a run of literal characters, trailing `%`.
        // Anything else (an `_`, or `%` in the middle) needs the general matcher.
        let leading = tokens.first() == Some(&Token::Many);
        let trailing = tokens.len() > usize::from(leading) && tokens.last() == Some(&Token::Many);
        let start = usize::from(leading);
        let end = tokens.len() - usize::from(trailing);
        let literal: Option<String> = tokens
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|t| match t {
                Token::Char(c) => Some(*c),
                Token::One | Token::Many => None,
            })
            .collect();
        match (literal, leading, trailing) {
            (Some(text), false, false) => LikePattern::Exact(text),
            (Some(text), false, true) => LikePattern::Prefix(text),
            (Some(text), true, false) => LikePattern::Suffix(text),
            (Some(text), true, true) => LikePattern::Contains(text),
            (None, ..) => LikePattern::General(tokens),
        }
    }

    pub(super) fn matches(&self, text: &str) -> bool {
        match self {
            LikePattern::Exact(p) => text == p,
            LikePattern::Prefix(p) => text.starts_with(p.as_str()),
            LikePattern::Suffix(p) => text.ends_with(p.as_str()),
            LikePattern::Contains(p) => text.contains(p.as_str()),
            LikePattern::General(tokens) => matches_general(tokens, text),
        }
    }
}

/// Resolves escapes and collapses runs of `%` (which match the same as one).
fn tokenize(pattern: &str) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '\\' => match chars.peek() {
                Some(&escaped @ ('%' | '_')) => {
                    chars.next();
                    Token::Char(escaped)
                }
                _ => Token::Char('\\'),
            },
            '%' if tokens.last() == Some(&Token::Many) => continue,
            '%' => Token::Many,
            '_' => Token::One,
            other => Token::Char(other),
        };
        tokens.push(token);
    }
    tokens
}

/// Wildcard matching with single-star backtracking: on a mismatch, retry from
/// the most recent `%` with it swallowing one more character. Only the latest
/// `%` ever needs revisiting, which bounds the work to O(pattern × text).
fn matches_general(tokens: &[Token], text: &str) -> bool {
    let mut p = 0; // next token
    let mut t = 0; // byte offset of the next unmatched character of `text`
    // (token after the latest `%`, text offset that `%` has swallowed up to)
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        let next_char = text.get(t..).and_then(|rest| rest.chars().next());
        let advanced = match (tokens.get(p), next_char) {
            (Some(Token::Many), _) => {
                backtrack = Some((p + 1, t));
                p += 1;
                continue;
            }
            (Some(Token::One), Some(c)) => Some(c),
            (Some(Token::Char(expected)), Some(c)) if *expected == c => Some(c),
            (None, None) => return true,
            _ => None,
        };
        if let Some(c) = advanced {
            p += 1;
            t += c.len_utf8();
            continue;
        }
        // Mismatch: let the latest `%` absorb one more character, if any remain.
        let Some((after_many, swallowed)) = backtrack else {
            return false;
        };
        let Some(c) = text.get(swallowed..).and_then(|rest| rest.chars().next()) else {
            return false;
        };
        let swallowed = swallowed + c.len_utf8();
        backtrack = Some((after_many, swallowed));
        p = after_many;
        t = swallowed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(text: &str, pattern: &str) -> bool {
        LikePattern::compile(pattern).matches(text)
    }

    #[test]
    fn fast_paths_are_chosen_for_simple_patterns() {
        assert_eq!(
            LikePattern::compile("abc"),
            LikePattern::Exact("abc".into())
        );
        assert_eq!(
            LikePattern::compile("ab%"),
            LikePattern::Prefix("ab".into())
        );
        assert_eq!(
            LikePattern::compile("%%ab"),
            LikePattern::Suffix("ab".into())
        );
        assert_eq!(
            LikePattern::compile("%ab%"),
            LikePattern::Contains("ab".into())
        );
        assert_eq!(
            LikePattern::compile("%"),
            LikePattern::Suffix(String::new())
        );
        assert_eq!(
            LikePattern::compile("%%"),
            LikePattern::Suffix(String::new())
        );
        assert_eq!(LikePattern::compile(""), LikePattern::Exact(String::new()));
        assert_eq!(
            LikePattern::compile(r"a\%"),
            LikePattern::Exact("a%".into())
        );
        assert!(matches!(
            LikePattern::compile("a_"),
            LikePattern::General(_)
        ));
        assert!(matches!(
            LikePattern::compile("a%b"),
            LikePattern::General(_)
        ));
    }

    #[test]
    fn wildcards() {
        assert!(like("abc", "a%b%c"));
        assert!(like("azzzbzzzc", "a%b%c"));
        assert!(!like("ac", "abc"));
        assert!(!like("", "abc"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("azbzc", "a_b_c"));
        assert!(!like("azbc", "a_b_c"));
        assert!(like(".ab.cde.", ".%.%."));
        assert!(!like("ab.cde", ".%.%."));
        assert!(like("aaab", "%ab"));
        assert!(like("mississippi", "m%iss%pi"));
        assert!(!like("mississippi", "m%iss%pix"));
    }

    #[test]
    fn escapes_match_wildcard_characters_literally() {
        assert!(like("a_b_c", r"a\_b\_c"));
        assert!(!like("azbzc", r"a\_b\_c"));
        assert!(like("a%b%c", r"a\%b\%c"));
        assert!(!like("abc", r"a\%b\%c"));
        assert!(like("abc123123%456_dzf", r"abc%123\%456\_d_f"));
        // A backslash before anything else is itself.
        assert!(like(r"ab\c", r"ab\c"));
        assert!(like(r"a\", r"a\"));
        assert!(like(r"x\%", r"x\\%"));
        assert!(!like("x%", r"x\\%"));
    }

    #[test]
    fn underscore_matches_one_character_not_one_byte() {
        assert!(like("é", "_"));
        assert!(like("aé€b", "a__b"));
        assert!(!like("aé€b", "a_b"));
        assert!(like("日本語", "%本%"));
        assert!(like("日本語", "_本_"));
    }

    #[test]
    fn general_matcher_agrees_with_fast_paths() {
        let texts = ["", "a", "ab", "ba", "abab", "xaby", "é", "aé"];
        let patterns = [
            "", "a", "ab", "a%", "%a", "%a%", "%ab%", "ab%", "%", "é%", "%é",
        ];
        for pattern in patterns {
            let compiled = LikePattern::compile(pattern);
            for text in texts {
                assert_eq!(
                    compiled.matches(text),
                    matches_general(&tokenize(pattern), text),
                    "{text:?} LIKE {pattern:?}"
                );
            }
        }
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(5_000);
        let pattern = format!("{}b", "%a".repeat(50));
        assert!(!like(&text, &pattern));
    }
}
