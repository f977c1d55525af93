//! `fieldSelector` on list and watch, as a Kubernetes API server takes it for
//! custom resources: `metadata.name` and `metadata.namespace` with `=`, `==` or
//! `!=`, requirements comma-separated and AND-ed, `\` escaping `\`, `,` and `=`
//! in a value. Any other field, or a selector that does not parse, is a 400:
//! ignoring it would answer with every object, and `kubectl delete
//! --field-selector` deletes what the list answers.

use kube::core::DynamicObject;

use super::ApiError;
use crate::store::WatchStream;
use futures::StreamExt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    field: Field,
    value: String,
    equal: bool,
}

/// The fields every kind can be selected by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

impl Field {
    fn parse(label: &str) -> Result<Self, ApiError> {
        match label {
            "metadata.name" => Ok(Self::Name),
            "metadata.namespace" => Ok(Self::Namespace),
            other => Err(ApiError::bad_request(format!(
                "field label not supported: {other} (a fieldSelector takes metadata.name and metadata.namespace)"
            ))),
        }
    }

    /// The field's value; a cluster-scoped object's namespace is empty, as
    /// Kubernetes compares it.
    fn of(self, object: &DynamicObject) -> &str {
        let value = match self {
            Self::Name => &object.metadata.name,
            Self::Namespace => &object.metadata.namespace,
        };
        value.as_deref().unwrap_or_default()
    }
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in split_terms(text).into_iter().filter(|t| !t.is_empty()) {
            let Some((label, operator, value)) = split_term(term) else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector {text:?}: cannot understand {term:?} (field=value, field==value or field!=value)"
                )));
            };
            requirements.push(Requirement {
                field: Field::parse(label)?,
                value: unescape(value).map_err(|problem| {
                    ApiError::bad_request(format!(
                        "invalid field selector {text:?}: in {term:?}, {problem}"
                    ))
                })?,
                equal: operator != "!=",
            });
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, object: &DynamicObject) -> bool {
        self.requirements
            .iter()
            .all(|r| (r.field.of(object) == r.value) == r.equal)
    }

    /// The watch's events of matching objects only. Label selectors are applied
    /// by the store; these fields never change on an object, so filtering the
    /// events here answers the same as the store would, with no object moving
    /// into or out of the selection.
    pub fn retain(self, stream: WatchStream) -> WatchStream {
        if self.requirements.is_empty() {
            return stream;
        }
        Box::pin(stream.filter(move |item| {
            let wanted = match item {
                Ok(event) => self.matches(&event.object),
                Err(_) => true,
            };
            std::future::ready(wanted)
        }))
    }
}

/// Splits on commas a backslash does not escape.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

/// The first operator in the term splits it (`!=` before `==` before `=`, as
/// Kubernetes tries them at each position).
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    (0..term.len())
        .filter(|i| term.is_char_boundary(*i))
        .find_map(|i| {
            ["!=", "==", "="].into_iter().find_map(|operator| {
                term[i..]
                    .strip_prefix(operator)
                    .map(|value| (&term[..i], operator, value))
            })
        })
}

/// A value with its escapes resolved; an unescaped `,` or `=` or an unknown
/// escape is refused, as Kubernetes refuses them.
fn unescape(value: &str) -> Result<String, String> {
    let mut plain = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        match c {
            '\\' | ',' | '=' if escaped => {
                plain.push(c);
                escaped = false;
            }
            _ if escaped => return Err(format!("\\{c} is not an escape (\\\\, \\, and \\=)")),
            '\\' => escaped = true,
            ',' | '=' => return Err(format!("{c:?} in a value must be escaped as \\{c}")),
            _ => plain.push(c),
        }
    }
    if escaped {
        return Err("a value may not end with a lone \\".to_string());
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(namespace: Option<&str>, name: &str) -> DynamicObject {
        let mut object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Thing", "metadata": {"name": name}
        }))
        .expect("an object");
        object.metadata.namespace = namespace.map(str::to_string);
        object
    }

    #[test]
    fn name_and_namespace_select_as_kubernetes_does() {
        let ch1 = object(Some("team-a"), "ch1");
        let cases = [
            ("", true),
            ("metadata.name=ch1", true),
            ("metadata.name==ch1", true),
            ("metadata.name!=ch1", false),
            ("metadata.name=ch2", false),
            ("metadata.name=ch1,metadata.namespace=team-a", true),
            ("metadata.name=ch1,metadata.namespace=team-b", false),
            ("metadata.namespace!=team-b,", true),
            ("metadata.name=", false),
        ];
        for (selector, expected) in cases {
            let parsed = FieldSelector::parse(selector).expect(selector);
            assert_eq!(parsed.matches(&ch1), expected, "{selector}");
        }
    }

    #[test]
    fn a_cluster_scoped_object_has_an_empty_namespace() {
        let namespace = object(None, "team-a");
        let empty = FieldSelector::parse("metadata.namespace=").expect("valid");
        assert!(empty.matches(&namespace));
        let named = FieldSelector::parse("metadata.namespace=team-a").expect("valid");
        assert!(!named.matches(&namespace));
    }

    #[test]
    fn escaped_commas_and_equals_are_part_of_the_value() {
        let odd = object(Some("team-a"), "a,b=c\\d");
        let parsed = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").expect("valid");
        assert!(parsed.matches(&odd));
    }

    #[test]
    fn unsupported_fields_and_malformed_selectors_are_refused() {
        for bad in [
            "garbage",
            "spec.bogus=x",
            "metadata.labels=x",
            "metadata.name=a=b",
            r"metadata.name=a\x",
            r"metadata.name=a\",
            "=x",
        ] {
            let refused = FieldSelector::parse(bad).expect_err(bad);
            assert_eq!(refused.code, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
        let unsupported = FieldSelector::parse("spec.bogus=x").expect_err("unsupported");
        assert!(
            unsupported
                .message
                .contains("field label not supported: spec.bogus")
        );
    }
}
