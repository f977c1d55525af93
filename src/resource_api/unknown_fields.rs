//! Fields a kind does not declare, handled as the Kubernetes API server handles
//! them for custom resources: dropped before the object is defaulted and
//! validated (pruning, against the same schemas deploy/crds.yaml installs), and,
//! by the request's `fieldValidation`, named in a `Warning` header (`Warn`, the
//! default), dropped silently (`Ignore`) or refused with 400 (`Strict`, what
//! kubectl sends). So a misspelt `fitler` is never stored as if it were read.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderValue;
use axum::http::header::WARNING;
use axum::response::Response;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::{Map, Value};

use super::ApiError;
use super::duplicate_fields::Duplicates;
use super::field_names::{NAMED_AT_MOST, shortened};
use crate::resources::{AccessToken, KindSpec, crds, kind_of};

/// What a write does with fields the kind does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Fields of `metadata` (ObjectMeta); the API server drops any other.
const OBJECT_META: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

impl FieldValidation {
    /// From a request's query: `fieldValidation` is `Ignore`, `Warn` or
    /// `Strict` (case as Kubernetes spells them); absent or empty is `Warn`.
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ApiError> {
        let mut validation = Self::Warn;
        for (_, value) in query.iter().filter(|(key, _)| key == "fieldValidation") {
            validation = match value.as_str() {
                "" | "Warn" => Self::Warn,
                "Ignore" => Self::Ignore,
                "Strict" => Self::Strict,
                other => {
                    return Err(ApiError::unsupported_option(
                        "fieldValidation",
                        other,
                        "\"Ignore\", \"Strict\", \"Warn\"",
                    ));
                }
            };
        }
        Ok(validation)
    }

    /// Drops from `object` what `kind` does not declare; the warnings to send,
    /// or, under `Strict`, the error. An AccessToken is always strict: a
    /// misspelt `application`, dropped, would grant the whole namespace.
    /// The fields the body gave twice (`duplicates`) are answered alike.
    pub fn prune(
        self,
        kind: &KindSpec,
        object: &mut Value,
        duplicates: &Duplicates,
    ) -> Result<Warnings, ApiError> {
        let unknown = prune(kind, object);
        self.report(kind, &unknown, duplicates)
    }

    /// Warnings, or under `Strict` the error, for fields unknown to `kind`
    /// and fields the body gave twice.
    pub fn report(
        self,
        kind: &KindSpec,
        unknown: &[String],
        duplicates: &Duplicates,
    ) -> Result<Warnings, ApiError> {
        let strict = self == Self::Strict || std::ptr::eq(kind, kind_of::<AccessToken>());
        let total = unknown.len() + duplicates.count;
        if total == 0 || self == Self::Ignore && !strict {
            return Ok(Warnings::default());
        }
        let name =
            |problem: &str, field: &String| format!("{problem} field {:?}", shortened(field));
        let mut named: Vec<String> = unknown
            .iter()
            .map(|field| name("unknown", field))
            .chain(
                duplicates
                    .named
                    .iter()
                    .map(|field| name("duplicate", field)),
            )
            .take(NAMED_AT_MOST)
            .collect();
        if total > NAMED_AT_MOST {
            let which = match duplicates.count == 0 {
                true => "unknown",
                false => "unknown or duplicate",
            };
            named.push(format!("and {} more {which} fields", total - NAMED_AT_MOST));
        }
        if strict {
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                named.join(", ")
            )));
        }
        Ok(Warnings(named))
    }
}

/// The `Warning` headers a write's answer carries (RFC 7234's code 299, as
/// the Kubernetes API server sends them).
#[derive(Debug, Default)]
pub struct Warnings(Vec<String>);

impl Warnings {
    pub fn attach(self, mut response: Response) -> Response {
        for warning in self.0 {
            let text = serde_json::to_string(&warning).unwrap_or_default();
            if let Ok(value) = HeaderValue::from_str(&format!("299 - {text}")) {
                response.headers_mut().append(WARNING, value);
            }
        }
        response
    }
}

/// Drops from `object` every field `kind`'s schema does not declare; their
/// paths (`spec.filter.atributes`, `spec.items[2].x`).
fn prune(kind: &KindSpec, object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let (Some(schema), Some(fields)) = (SCHEMAS.get(&kind.storage_key()), object.as_object_mut())
    else {
        return unknown;
    };
    if let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.retain(|field, _| {
            let known = OBJECT_META.contains(&field.as_str());
            if !known {
                unknown.push(format!("metadata.{field}"));
            }
            known
        });
    }
    prune_fields(
        fields,
        schema,
        "",
        &["apiVersion", "kind", "metadata"],
        &mut unknown,
    );
    unknown
}

fn prune_value(value: &mut Value, schema: &JSONSchemaProps, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            let embedded: &[&str] = if schema.x_kubernetes_embedded_resource == Some(true) {
                &["apiVersion", "kind", "metadata"]
            } else {
                &[]
            };
            prune_fields(fields, schema, path, embedded, unknown);
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for (index, value) in items.iter_mut().enumerate() {
                    prune_value(value, item, &format!("{path}[{index}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// An object's fields against its schema: declared ones are pruned in turn,
/// `also_known` and those of a map (`additionalProperties`) or an open object
/// (`x-kubernetes-preserve-unknown-fields`) are kept, the rest dropped.
fn prune_fields(
    fields: &mut Map<String, Value>,
    schema: &JSONSchemaProps,
    path: &str,
    also_known: &[&str],
    unknown: &mut Vec<String>,
) {
    let keeps_unknown = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    fields.retain(|field, value| {
        let inner = if path.is_empty() {
            field.clone()
        } else {
            format!("{path}.{field}")
        };
        if let Some(declared) = schema.properties.as_ref().and_then(|p| p.get(field)) {
            prune_value(value, declared, &inner, unknown);
            return true;
        }
        match &schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(each)) => {
                prune_value(value, each, &inner, unknown);
                return true;
            }
            Some(JSONSchemaPropsOrBool::Bool(true)) => return true,
            _ => {}
        }
        if keeps_unknown || also_known.contains(&field.as_str()) {
            return true;
        }
        unknown.push(inner);
        false
    });
}

/// Each stored kind's schema by storage key: the CRDs', and a Namespace's.
static SCHEMAS: LazyLock<HashMap<String, JSONSchemaProps>> = LazyLock::new(|| {
    let mut schemas: HashMap<String, JSONSchemaProps> = crds::all()
        .into_iter()
        .filter_map(|crd| {
            let group = crd.spec.group;
            let kind = crd.spec.names.kind;
            let schema = crd.spec.versions.into_iter().next()?.schema?;
            Some((format!("{group}/{kind}"), schema.open_api_v3_schema?))
        })
        .collect();
    let namespace = serde_json::json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "finalizers": {"type": "array", "items": {"type": "string"}}
            }},
            "status": {"type": "object", "properties": {
                "phase": {"type": "string"},
                "conditions": {"type": "array", "items": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true
                }}
            }}
        }
    });
    if let Ok(schema) = serde_json::from_value(namespace) {
        schemas.insert("core/Namespace".to_string(), schema);
    }
    schemas
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resource_api::field_names::LONGEST_NAMED_PATH;
    use crate::resources::{Trigger, kinds};

    #[test]
    fn every_stored_kind_has_a_schema() {
        for kind in kinds() {
            assert!(SCHEMAS.contains_key(&kind.storage_key()), "{}", kind.kind);
        }
    }

    #[test]
    fn undeclared_fields_are_dropped_and_named_with_their_paths() {
        let mut trigger = json!({
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": "t", "labels": {"a": "b"}, "colour": "red"},
            "spec": {
                "broker": "default",
                "fitler": {"attributes": {"type": "x"}},
                "filter": {"attributes": {"type": "y", "any-name": "z"}},
                "subscriber": {"uri": "http://sink/", "ref": null},
                "delivery": {"retry": 3, "retries": 5},
                "filters": [{"exact": {"type": "y"}, "any": []}]
            },
            "extra": 1
        });
        let mut unknown = prune(kind_of::<Trigger>(), &mut trigger);
        unknown.sort();
        assert_eq!(
            unknown,
            [
                "extra",
                "metadata.colour",
                "spec.delivery.retries",
                "spec.fitler"
            ]
        );
        assert_eq!(trigger["spec"]["filter"]["attributes"]["any-name"], "z");
        assert_eq!(trigger["metadata"]["labels"]["a"], "b");
        // Filters are free-form in the schema (their dialects are checked by
        // the Trigger's own validation).
        assert_eq!(trigger["spec"]["filters"][0]["any"], json!([]));
        assert!(trigger["spec"].get("fitler").is_none());
        assert!(trigger.get("extra").is_none());
        assert_eq!(trigger["apiVersion"], "eventing.knative.dev/v1");
    }

    #[test]
    fn field_validation_takes_the_three_kubernetes_values_only() {
        let query = |value: &str| vec![("fieldValidation".to_string(), value.to_string())];
        assert_eq!(
            FieldValidation::from_query(&[]).ok(),
            Some(FieldValidation::Warn)
        );
        assert_eq!(
            FieldValidation::from_query(&query("Strict")).ok(),
            Some(FieldValidation::Strict)
        );
        assert_eq!(
            FieldValidation::from_query(&query("Ignore")).ok(),
            Some(FieldValidation::Ignore)
        );
        let refused = FieldValidation::from_query(&query("strict")).err();
        assert_eq!(refused.map(|e| e.code.as_u16()), Some(422));
    }

    #[test]
    fn strict_names_a_bounded_number_of_fields() {
        let mut spec = Map::new();
        for n in 0..1000 {
            spec.insert(format!("typo{n}{}", "é".repeat(n)), Value::Null);
        }
        let mut broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"name": "b"}, "spec": spec});
        let broker_kind = kinds().iter().find(|k| k.kind == "Broker");
        let error = broker_kind
            .map(|kind| FieldValidation::Strict.prune(kind, &mut broker, &Duplicates::default()))
            .and_then(Result::err);
        let message = error.map(|e| e.message).unwrap_or_default();
        assert_eq!(
            message.matches("unknown field ").count(),
            NAMED_AT_MOST,
            "{message}"
        );
        assert!(
            message.ends_with("and 980 more unknown fields"),
            "{message}"
        );
        assert!(message.len() < NAMED_AT_MOST * (LONGEST_NAMED_PATH + 32) + 100);
    }
}
