//! Kubernetes label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
//! `a` and `!a`, comma-separated and AND-ed. Keys and values are checked as
//! Kubernetes checks labels, so a selector no label could match (`a==b=c`,
//! `a in ()`, `a=b,,c`) is refused rather than quietly selecting nothing.

use std::collections::BTreeMap;

use crate::resources::{Invalid, check_label_key, is_label_value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn equals(key: &str, value: &str) -> Self {
        Self {
            requirements: vec![Requirement::Equals(key.to_string(), value.to_string())],
        }
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.trim().is_empty() {
            return Ok(Self::everything());
        }
        let requirements = split_clauses(text)
            .into_iter()
            .map(|clause| parse_clause(clause.trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key));
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// The selector in Kubernetes' query syntax, for a real API server.
impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clauses: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&clauses.join(","))
    }
}

/// Splits on commas outside parentheses.
fn split_clauses(text: &str) -> Vec<&str> {
    let mut clauses = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                clauses.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    clauses.push(&text[start..]);
    clauses
}

fn parse_clause(clause: &str) -> Result<Requirement, Invalid> {
    let invalid = || {
        Invalid::new(
            "labelSelector",
            format!("{clause:?} is not a label selector requirement"),
        )
    };
    if clause.is_empty() {
        return Err(Invalid::new(
            "labelSelector",
            "has an empty requirement (two commas, or one at an end)",
        ));
    }
    if let Some(key) = clause.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key_of(key, clause)?));
    }
    if let Some((key, value)) = clause.split_once("!=") {
        return Ok(Requirement::NotEquals(
            key_of(key, clause)?,
            value_of(value, clause)?,
        ));
    }
    if let Some((key, value)) = clause.split_once("==").or_else(|| clause.split_once('=')) {
        return Ok(Requirement::Equals(
            key_of(key, clause)?,
            value_of(value, clause)?,
        ));
    }
    let mut words = clause.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(key_of(key, clause)?));
    };
    let (operator, set) = rest
        .split_once(char::is_whitespace)
        .map_or_else(
            || rest.split_once('(').map(|(op, s)| (op, format!("({s}"))),
            |(op, s)| Some((op, s.trim().to_string())),
        )
        .ok_or_else(invalid)?;
    let listed = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(invalid)?;
    if listed.trim().is_empty() {
        return Err(Invalid::new(
            "labelSelector",
            format!("{clause:?}: the values of in and notin cannot be empty"),
        ));
    }
    let values = listed
        .split(',')
        .map(|value| value_of(value, clause))
        .collect::<Result<_, _>>()?;
    match operator.trim() {
        "in" => Ok(Requirement::In(key_of(key, clause)?, values)),
        "notin" => Ok(Requirement::NotIn(key_of(key, clause)?, values)),
        _ => Err(invalid()),
    }
}

fn key_of(key: &str, clause: &str) -> Result<String, Invalid> {
    let key = key.trim();
    check_label_key(key).map_err(|_| {
        Invalid::new(
            "labelSelector",
            format!("{clause:?} has no valid label key"),
        )
    })?;
    Ok(key.to_string())
}

fn value_of(value: &str, clause: &str) -> Result<String, Invalid> {
    let value = value.trim();
    if !is_label_value(value) {
        return Err(Invalid::new(
            "labelSelector",
            format!("{clause:?}: {value:?} is not a valid label value"),
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let l = labels(&[("app", "orders"), ("tier", "back")]);
        let cases = [
            ("app=orders", true),
            ("app==orders,tier=back", true),
            ("app!=orders", false),
            ("app in (orders, billing)", true),
            ("tier notin (back)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("", true),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).expect(selector);
            assert_eq!(parsed.matches(Some(&l)), expected, "{selector}");
        }
    }

    #[test]
    fn selectors_print_back_in_query_syntax() {
        let text = "a=b,c!=d,e in (x,y),f notin (z),g,!h";
        let parsed = LabelSelector::parse(text).expect("valid");
        assert_eq!(parsed.to_string(), text);
        assert_eq!(
            LabelSelector::parse(&parsed.to_string()).expect("again"),
            parsed
        );
    }

    #[test]
    fn malformed_selectors_are_refused() {
        for bad in [
            "app in orders",
            "a b c",
            "=x",
            "app wat (x)",
            "a==b=c",
            "a in ()",
            "a notin ( )",
            "a=b,,c=d",
            "a=b,",
            ",a",
            "a=-x",
            "a in (x,y z)",
            "-a=b",
            "a/b/c=d",
            "Bad_Prefix/a",
            &format!("a={}", "x".repeat(64)),
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
