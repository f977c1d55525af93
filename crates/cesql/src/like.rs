//! LIKE patterns (spec 3.4.3): compiled once at parse time, matched per event
//! in time linear in the text, without allocating (but for a rare case, below).
//!
//! `%` matches any run of characters, `_` exactly one character, `\%` and
//! `\_` the literal characters; any other backslash is an ordinary character
//! (so `'ab\c' LIKE 'ab\c'` holds, as the conformance suite requires).
//! Matching is case-sensitive and by Unicode scalar value.
//!
//! # How a pattern is matched, and what it costs
//!
//! Most filter patterns are a prefix, a suffix or a substring (`'https://%'`,
//! `'%.error'`); those compile to a plain `str` operation: O(pattern), or
//! O(text + pattern) for a substring (std's Two-Way search).
//!
//! Any other pattern is split at its `%`s into segments of literal characters
//! and `_`: `first%middle…%last`. `first` must match at the start of the text
//! and `last` at its end; each middle segment is then searched for, left to
//! right, after the end of the previous one. Taking the leftmost occurrence is
//! always right: a segment has a fixed length, so its leftmost occurrence also
//! ends first and leaves the most room for the segments after it, and the `%`s
//! on both sides absorb whatever lies in between. No part of the text is
//! searched twice, so nothing backtracks. With `t` the text's length and `p`
//! the pattern's:
//!
//! - `first`, `last`, or the whole pattern when it has no `%`: one comparison
//!   per pattern character, O(p);
//! - a middle segment of literal characters: Knuth–Morris–Pratt over UTF-8
//!   bytes (a match of valid UTF-8 in valid UTF-8 falls on character
//!   boundaries), at most two comparisons per byte searched;
//! - a middle segment with `_`: shift-and (bitap) over characters, one 64-bit
//!   word operation per character searched for each 64 characters of the
//!   segment.
//!
//! In all, O(p + t) comparisons when no middle segment with `_` is longer than
//! 64 characters (no realistic pattern has one; beyond that, O(p + t × s/64)
//! for the longest such segment `s`, and its state is the one allocation).
//! Every comparison is charged to the evaluation's [`Budget`], so a match that
//! would cost more than the budget stops with an error instead. The old
//! single-star backtracking matcher took O(p × t): 7.6 s for a 200,000-character
//! text and a 20,000-character pattern; `matching_is_linear_in_pattern_and_text`
//! counts the comparisons for that size.

use super::error::LimitExceeded;
use super::limits::Budget;

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LikePattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General(General),
}

/// A pattern token, after escapes are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
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
            (None, ..) => LikePattern::General(General::compile(&tokens)),
        }
    }

    /// Whether `text` matches, charging each comparison to `budget`.
    pub(super) fn matches(&self, text: &str, budget: &mut Budget) -> Result<bool, LimitExceeded> {
        match self {
            LikePattern::Exact(p) => {
                budget.spend(p.len())?;
                Ok(text == p)
            }
            LikePattern::Prefix(p) => {
                budget.spend(p.len())?;
                Ok(text.starts_with(p.as_str()))
            }
            LikePattern::Suffix(p) => {
                budget.spend(p.len())?;
                Ok(text.ends_with(p.as_str()))
            }
            LikePattern::Contains(p) => {
                budget.spend(text.len().saturating_add(p.len()))?;
                Ok(text.contains(p.as_str()))
            }
            LikePattern::General(general) => general.matches(text, budget),
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

/// One position of a segment: a given character, or any one (`_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Char(char),
    Any,
}

/// A pattern that is not a plain prefix, suffix or substring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum General {
    /// No `%`: the units cover the whole text, one character each.
    Whole(Vec<Unit>),
    /// `first%middle[0]%…%last`; `first` and `last` may be empty, the middle
    /// segments are not (runs of `%` are collapsed).
    Spread {
        first: Vec<Unit>,
        middle: Vec<Finder>,
        last: Vec<Unit>,
    },
}

impl General {
    fn compile(tokens: &[Token]) -> Self {
        let mut segments = tokens.split(|t| *t == Token::Many).map(|segment| {
            segment
                .iter()
                .map(|t| match t {
                    Token::Char(c) => Unit::Char(*c),
                    Token::One | Token::Many => Unit::Any,
                })
                .collect::<Vec<_>>()
        });
        let first = segments.next().unwrap_or_default();
        let Some(last) = segments.next_back() else {
            return General::Whole(first);
        };
        let middle = segments
            .filter(|units| !units.is_empty())
            .map(|units| Finder::compile(&units))
            .collect();
        General::Spread {
            first,
            middle,
            last,
        }
    }

    fn matches(&self, text: &str, budget: &mut Budget) -> Result<bool, LimitExceeded> {
        match self {
            General::Whole(units) => {
                let mut chars = text.chars();
                for unit in units {
                    budget.spend(1)?;
                    match chars.next() {
                        Some(c) if unit.admits(c) => {}
                        _ => return Ok(false),
                    }
                }
                Ok(chars.next().is_none())
            }
            General::Spread {
                first,
                middle,
                last,
            } => {
                let Some(mut at) = prefix_end(first, text, budget)? else {
                    return Ok(false);
                };
                let Some(end) = suffix_start(last, text, budget)? else {
                    return Ok(false);
                };
                // `first` and `last` must not overlap.
                if end < at {
                    return Ok(false);
                }
                for finder in middle {
                    let window = text.get(at..end).unwrap_or_default();
                    match finder.find(window, budget)? {
                        Some(found_end) => at += found_end,
                        None => return Ok(false),
                    }
                }
                Ok(true)
            }
        }
    }
}

impl Unit {
    fn admits(self, c: char) -> bool {
        match self {
            Unit::Char(expected) => expected == c,
            Unit::Any => true,
        }
    }
}

/// Where `units` end when they match at the start of `text`.
fn prefix_end(
    units: &[Unit],
    text: &str,
    budget: &mut Budget,
) -> Result<Option<usize>, LimitExceeded> {
    let mut chars = text.char_indices();
    let mut end = 0;
    for unit in units {
        budget.spend(1)?;
        match chars.next() {
            Some((i, c)) if unit.admits(c) => end = i + c.len_utf8(),
            _ => return Ok(None),
        }
    }
    Ok(Some(end))
}

/// Where `units` begin when they match at the end of `text`.
fn suffix_start(
    units: &[Unit],
    text: &str,
    budget: &mut Budget,
) -> Result<Option<usize>, LimitExceeded> {
    let mut chars = text.char_indices().rev();
    let mut start = text.len();
    for unit in units.iter().rev() {
        budget.spend(1)?;
        match chars.next() {
            Some((i, c)) if unit.admits(c) => start = i,
            _ => return Ok(None),
        }
    }
    Ok(Some(start))
}

/// Searches for one middle segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Finder {
    Literal(Kmp),
    Wild(Bitap),
}

impl Finder {
    fn compile(units: &[Unit]) -> Self {
        let literal: Option<String> = units
            .iter()
            .map(|unit| match unit {
                Unit::Char(c) => Some(*c),
                Unit::Any => None,
            })
            .collect();
        match literal {
            Some(needle) => Finder::Literal(Kmp::compile(needle)),
            None => Finder::Wild(Bitap::compile(units)),
        }
    }

    /// The byte offset just past the segment's leftmost occurrence in `text`.
    fn find(&self, text: &str, budget: &mut Budget) -> Result<Option<usize>, LimitExceeded> {
        match self {
            Finder::Literal(kmp) => kmp.find(text.as_bytes(), budget),
            Finder::Wild(bitap) => bitap.find(text, budget),
        }
    }
}

/// Knuth–Morris–Pratt search for a literal segment, over bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Kmp {
    needle: Box<[u8]>,
    /// `border[i]`: the length of the longest proper prefix of `needle[..=i]`
    /// that is also its suffix: where to resume after a mismatch.
    border: Box<[usize]>,
}

impl Kmp {
    fn compile(needle: String) -> Self {
        let needle = needle.into_bytes().into_boxed_slice();
        let mut border = vec![0; needle.len()];
        let mut length = 0;
        for i in 1..needle.len() {
            while length > 0 && needle.get(i) != needle.get(length) {
                length = border.get(length - 1).copied().unwrap_or(0);
            }
            if needle.get(i) == needle.get(length) {
                length += 1;
            }
            if let Some(slot) = border.get_mut(i) {
                *slot = length;
            }
        }
        Kmp {
            needle,
            border: border.into_boxed_slice(),
        }
    }

    /// Each byte of `haystack` is compared once when it matches; each mismatch
    /// moves the needle forward by at least one, so there are at most
    /// `2 × haystack.len()` comparisons.
    fn find(&self, haystack: &[u8], budget: &mut Budget) -> Result<Option<usize>, LimitExceeded> {
        if self.needle.is_empty() {
            return Ok(Some(0));
        }
        let mut matched = 0;
        for (i, byte) in haystack.iter().enumerate() {
            loop {
                budget.spend(1)?;
                if self.needle.get(matched) == Some(byte) {
                    matched += 1;
                    break;
                }
                if matched == 0 {
                    break;
                }
                matched = self.border.get(matched - 1).copied().unwrap_or(0);
            }
            if matched == self.needle.len() {
                return Ok(Some(i + 1));
            }
        }
        Ok(None)
    }
}

/// Shift-and search for a segment with `_`, over characters: bit `i` of the
/// state says "the last `i + 1` characters match the segment's first `i + 1`
/// units". The state is one 64-bit word per 64 units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bitap {
    words: Vec<BitapWord>,
    /// Units in the segment (at least one).
    len: usize,
}

/// The masks of 64 consecutive units: for a character, the bits of the units
/// that admit it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BitapWord {
    /// The `_` units, which admit every character.
    any: u64,
    /// The characters these units name, sorted, with their units' bits.
    /// At most 64 entries, so the masks take space linear in the segment.
    chars: Vec<(char, u64)>,
}

impl BitapWord {
    fn mask(&self, c: char) -> u64 {
        let named = self
            .chars
            .binary_search_by_key(&c, |&(named, _)| named)
            .ok()
            .and_then(|i| self.chars.get(i))
            .map_or(0, |&(_, bits)| bits);
        self.any | named
    }
}

impl Bitap {
    fn compile(units: &[Unit]) -> Self {
        let words = units
            .chunks(64)
            .map(|chunk| {
                let mut word = BitapWord {
                    any: 0,
                    chars: Vec::new(),
                };
                for (bit, unit) in chunk.iter().enumerate() {
                    let bit = 1u64 << bit;
                    match unit {
                        Unit::Any => word.any |= bit,
                        Unit::Char(c) => {
                            match word.chars.binary_search_by_key(c, |&(named, _)| named) {
                                Ok(i) => {
                                    if let Some(entry) = word.chars.get_mut(i) {
                                        entry.1 |= bit;
                                    }
                                }
                                Err(i) => word.chars.insert(i, (*c, bit)),
                            }
                        }
                    }
                }
                word
            })
            .collect();
        Bitap {
            words,
            len: units.len(),
        }
    }

    fn find(&self, text: &str, budget: &mut Budget) -> Result<Option<usize>, LimitExceeded> {
        let Some(last) = self.len.checked_sub(1) else {
            return Ok(Some(0));
        };
        let (last_word, last_bit) = (last / 64, 1u64 << (last % 64));
        // One word is the rule (segments of up to 64 characters): no allocation.
        let mut single = [0u64; 1];
        let mut several;
        let state: &mut [u64] = if self.words.len() == 1 {
            &mut single
        } else {
            several = vec![0u64; self.words.len()];
            &mut several
        };
        for (i, c) in text.char_indices() {
            budget.spend(self.words.len())?;
            // Bit 0 always enters: a match may start at every character.
            let mut carry = 1;
            for (bits, word) in state.iter_mut().zip(&self.words) {
                let shifted_out = *bits >> 63;
                *bits = ((*bits << 1) | carry) & word.mask(c);
                carry = shifted_out;
            }
            if state
                .get(last_word)
                .is_some_and(|bits| bits & last_bit != 0)
            {
                return Ok(Some(i + c.len_utf8()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(text: &str, pattern: &str) -> bool {
        LikePattern::compile(pattern)
            .matches(text, &mut Budget::new(u64::MAX))
            .expect("an unlimited budget")
    }

    /// The general matcher, even for patterns that have a fast path.
    fn general(text: &str, pattern: &str) -> bool {
        General::compile(&tokenize(pattern))
            .matches(text, &mut Budget::new(u64::MAX))
            .expect("an unlimited budget")
    }

    /// Comparisons the matcher makes deciding `text LIKE pattern`.
    fn comparisons(text: &str, pattern: &str) -> (bool, u64) {
        let mut budget = Budget::new(u64::MAX);
        let matched = LikePattern::compile(pattern)
            .matches(text, &mut budget)
            .expect("an unlimited budget");
        (matched, budget.used())
    }

    /// The definition, by dynamic programming over (pattern, text) prefixes:
    /// slow, obviously right, and independent of the code under test.
    fn reference(text: &str, pattern: &str) -> bool {
        let tokens = tokenize(pattern);
        let text: Vec<char> = text.chars().collect();
        // matched[j]: the tokens so far match text[..j].
        let mut matched = vec![false; text.len() + 1];
        matched[0] = true;
        for token in tokens {
            let mut next = vec![false; text.len() + 1];
            for j in 0..=text.len() {
                next[j] = match token {
                    Token::Many => matched[j] || (j > 0 && next[j - 1]),
                    Token::One => j > 0 && matched[j - 1],
                    Token::Char(c) => j > 0 && matched[j - 1] && text[j - 1] == c,
                };
            }
            matched = next;
        }
        matched[text.len()]
    }

    #[test]
    fn fast_paths_are_chosen_for_simple_patterns() {
        let cases = [
            ("abc", LikePattern::Exact("abc".into())),
            ("ab%", LikePattern::Prefix("ab".into())),
            ("%%ab", LikePattern::Suffix("ab".into())),
            ("%ab%", LikePattern::Contains("ab".into())),
            ("%", LikePattern::Suffix(String::new())),
            ("%%", LikePattern::Suffix(String::new())),
            ("", LikePattern::Exact(String::new())),
            (r"a\%", LikePattern::Exact("a%".into())),
        ];
        for (pattern, compiled) in cases {
            assert_eq!(LikePattern::compile(pattern), compiled, "{pattern:?}");
        }
        for pattern in ["a_", "a%b", "%a%b%", "_%"] {
            assert!(
                matches!(LikePattern::compile(pattern), LikePattern::General(_)),
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn general_patterns_split_into_anchored_ends_and_searched_middles() {
        let LikePattern::General(General::Spread {
            first,
            middle,
            last,
        }) = LikePattern::compile("a_%%bc%d_e%%%")
        else {
            panic!("a spread pattern");
        };
        assert_eq!(first, vec![Unit::Char('a'), Unit::Any]);
        assert!(matches!(
            middle.as_slice(),
            [Finder::Literal(_), Finder::Wild(_)]
        ));
        assert!(last.is_empty());
        assert!(matches!(
            LikePattern::compile("a_b"),
            LikePattern::General(General::Whole(_))
        ));
    }

    #[test]
    fn wildcards() {
        let cases = [
            ("abc", "a%b%c", true),
            ("azzzbzzzc", "a%b%c", true),
            ("ac", "abc", false),
            ("", "abc", false),
            ("", "%", true),
            ("", "_", false),
            ("azbzc", "a_b_c", true),
            ("azbc", "a_b_c", false),
            (".ab.cde.", ".%.%.", true),
            ("ab.cde", ".%.%.", false),
            ("aaab", "%ab", true),
            ("mississippi", "m%iss%pi", true),
            ("mississippi", "m%iss%pix", false),
            ("mississippi", "%ss%ss%", true),
            ("mississippi", "%ss%ss%ss%", false),
            ("mississippi", "%s_i%", true),
            ("mississippi", "%p_s%", false),
            ("abc", "a%%c", true),
            ("ab", "a%b%", true),
            ("ab", "%a%b", true),
            ("aba", "a%a", true),
            ("a", "a%a", false),
            ("abcabd", "%ab_%", true),
            ("abcab", "%b_a%b", true),
            ("xyz", "x__", true),
            ("xyz", "x___", false),
            ("xyz", "%___", true),
            ("xyz", "%____", false),
        ];
        for (text, pattern, expected) in cases {
            assert_eq!(like(text, pattern), expected, "{text:?} LIKE {pattern:?}");
            assert_eq!(
                reference(text, pattern),
                expected,
                "reference {text:?} LIKE {pattern:?}"
            );
        }
    }

    #[test]
    fn escapes_match_wildcard_characters_literally() {
        assert!(like("a_b_c", r"a\_b\_c"));
        assert!(!like("azbzc", r"a\_b\_c"));
        assert!(like("a%b%c", r"a\%b\%c"));
        assert!(!like("abc", r"a\%b\%c"));
        assert!(like("abc123123%456_dzf", r"abc%123\%456\_d_f"));
        assert!(like("x_%y", r"%\_\%%"));
        assert!(!like("x%_y", r"%\_\%%"));
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
        assert!(like("x日本語y", "%日_語%"));
        assert!(like("x日本語y", "%本語%y"));
        assert!(!like("x日本語y", "%本_語%"));
        assert!(like("😀a😀", "%_a_"));
    }

    #[test]
    fn case_matters() {
        assert!(!like("ABC", "abc"));
        assert!(!like("xABCx", "%a_c%"));
        assert!(like("xABCx", "%A_C%"));
    }

    #[test]
    fn segments_with_wildcards_longer_than_one_word_are_found() {
        // 70 and 130 units: two and three words of bitap state.
        for n in [63, 64, 65, 70, 130] {
            let segment = format!("{}b", "a_".repeat(n));
            let pattern = format!("x%{segment}%y");
            let hit = format!("x{}{}by", "q".repeat(3), "az".repeat(n));
            let miss = format!("x{}{}cy", "q".repeat(3), "az".repeat(n));
            assert!(like(&hit, &pattern), "{n}");
            assert!(!like(&miss, &pattern), "{n}");
            assert!(reference(&hit, &pattern), "{n}");
        }
    }

    #[test]
    fn agrees_with_the_definition_on_every_small_case() {
        // Every pattern of up to 4 tokens over {a, b, _, %} against every
        // text of up to 5 characters over {a, b}: fast paths and the general
        // matcher alike.
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = patterns
                .iter()
                .flat_map(|p| ["a", "b", "_", "%"].map(|t| format!("{p}{t}")))
                .collect();
            patterns.extend(longer);
        }
        patterns.sort();
        patterns.dedup();
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| ["a", "b"].map(|c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        texts.sort();
        texts.dedup();
        for pattern in &patterns {
            for text in &texts {
                let expected = reference(text, pattern);
                assert_eq!(like(text, pattern), expected, "{text:?} LIKE {pattern:?}");
                assert_eq!(
                    general(text, pattern),
                    expected,
                    "{text:?} LIKE {pattern:?}"
                );
            }
        }
    }

    #[test]
    fn matching_is_linear_in_pattern_and_text() {
        // The issue's size: a 200,000-character text, a 20,000-character pattern.
        let text = "a".repeat(200_000);
        let t = text.len() as u64;
        let cases = [
            // The classic: `%a%a%…%b`. The old matcher re-scanned the text for
            // every `%`; here `b` fails at the end straight away.
            (format!("{}%b", "%a".repeat(10_000)), false),
            // `b` in the middle: every `a` is found at once, then `b` is
            // searched for through the rest of the text, once.
            (format!("{}%b%", "%a".repeat(9_999)), false),
            // A long literal that almost matches everywhere: the worst case of
            // naive search (pattern × text), linear with KMP.
            (format!("a%{}b%", "a".repeat(19_996)), false),
            (format!("a%{}%", "a".repeat(19_997)), true),
            // The same as a substring: std's Two-Way search.
            (format!("%{}b%", "a".repeat(19_997)), false),
            // Segments with `_`, searched with one bitap word each; the last
            // one through the rest of the text.
            (format!("{}%b", "%a_a".repeat(5_000)), false),
            (
                format!("{}%{}b%", "%a_a".repeat(4_990), "a_".repeat(31)),
                false,
            ),
            // Whole-text patterns with no `%`.
            ("_".repeat(20_000), false),
            (format!("{}b", "a".repeat(19_999)), false),
        ];
        for (pattern, expected) in cases {
            let p = pattern.len() as u64;
            let (matched, steps) = comparisons(&text, &pattern);
            assert_eq!(matched, expected, "{}…", &pattern[..20]);
            assert!(
                steps <= 2 * t + p,
                "{} comparisons for a {t}-byte text and the {p}-byte pattern {}…",
                steps,
                &pattern[..20]
            );
        }
    }

    #[test]
    fn long_segments_with_wildcards_cost_one_step_per_word() {
        // Over 64 units, the bitap state has several words: the cost is
        // text × words, still no backtracking.
        let text = "a".repeat(200_000);
        let segment = format!("{}b", "a_".repeat(1_000));
        let words = (segment.len() as u64).div_ceil(64);
        let (matched, steps) = comparisons(&text, &format!("%{segment}%"));
        assert!(!matched);
        assert!(steps <= text.len() as u64 * words, "{steps}");
    }

    #[test]
    fn a_match_stops_when_the_budget_runs_out() {
        let text = "a".repeat(10_000);
        let pattern = LikePattern::compile(&format!("%{}b%", "a_".repeat(10)));
        let mut budget = Budget::new(1_000);
        assert_eq!(
            pattern.matches(&text, &mut budget),
            Err(LimitExceeded::Work { limit: 1_000 })
        );
        let mut budget = Budget::new(1_000);
        assert_eq!(
            LikePattern::compile("%needle%").matches(&text, &mut budget),
            Err(LimitExceeded::Work { limit: 1_000 })
        );
    }
}
