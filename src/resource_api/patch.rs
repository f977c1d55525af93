//! PATCH bodies, as the Kubernetes API server takes them for custom resources:
//! a JSON merge patch (RFC 7386, `kubectl patch --type merge` and
//! client-side `kubectl apply`) or a JSON Patch (RFC 6902, `--type json`). A
//! strategic merge patch is Kubernetes' own format for its built-in kinds: it
//! is taken as a merge patch for a Namespace (whose fields merge alike) and
//! refused with 415 for every other kind, as the API server refuses it for
//! custom resources. Server-side apply is not served.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::ApiError;
use super::duplicate_fields::{Duplicates, duplicate_fields};
use super::field_names::shortened;
use crate::bodies::{MAX_NESTING, read_limited};
use crate::resources::{Invalid, KindSpec, Refusal, namespace_kind};

pub enum Patch {
    Merge(Value),
    Json(json_patch::Patch),
}

const MERGE: &str = "application/merge-patch+json";
const JSON: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

pub async fn read_patch(
    headers: &HeaderMap,
    body: Body,
    kind: &KindSpec,
    limit: usize,
) -> Result<(Patch, Duplicates), ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let merges_alike = std::ptr::eq(kind, namespace_kind());
    let (merge, strategic) = match media_type.as_str() {
        MERGE => (true, false),
        STRATEGIC if merges_alike => (true, true),
        JSON => (false, false),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "the body of a PATCH of a {} is {MERGE} or {JSON}, not {content_type:?}{}",
                    kind.kind,
                    if media_type == STRATEGIC {
                        " (a strategic merge patch is for Kubernetes' built-in kinds; use kubectl patch --type merge)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    };
    let bytes = read_limited(body, limit)
        .await
        .map_err(|error| ApiError::new(error.status(), error.reason(), error.to_string()))?;
    let invalid =
        |e: serde_json::Error| ApiError::bad_request(format!("the patch is not valid: {e}"));
    if merge {
        let patch: Value = serde_json::from_slice(&bytes).map_err(invalid)?;
        if !patch.is_object() {
            return Err(ApiError::bad_request(
                "a merge patch is a JSON object (RFC 7386)",
            ));
        }
        if strategic && let Some(directive) = first_directive(&patch) {
            return Err(ApiError::bad_request(format!(
                "strategic merge directives ({directive}) are not served: use a JSON merge patch (kubectl patch --type merge) or a JSON Patch"
            )));
        }
        // A merge patch has the object's shape: a field it gives twice is
        // named as a written object's is.
        Ok((Patch::Merge(patch), duplicate_fields(&bytes)))
    } else {
        serde_json::from_slice(&bytes)
            .map(|patch| (Patch::Json(patch), Duplicates::default()))
            .map_err(invalid)
    }
}

/// The first key of a strategic merge patch that is a directive (`$patch`,
/// `$retainKeys`, `$deleteFromPrimitiveList/…`, `$setElementOrder/…`): taken
/// as a merge patch it would be stored as a field.
fn first_directive(patch: &Value) -> Option<&str> {
    let mut pending = vec![patch];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(fields) => {
                if let Some(key) = fields.keys().find(|key| key.starts_with('$')) {
                    return Some(key);
                }
                pending.extend(fields.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    None
}

impl Patch {
    /// Applies the patch to the stored object (as JSON), all of it or none.
    /// Its cost is bounded by `limit` (the body limit): the result may not be
    /// larger than `limit` bytes as JSON nor nest deeper than `MAX_NESTING`, and
    /// the subtrees a JSON Patch copies or moves are walked within one budget
    /// of `limit` units for the whole patch (a `copy` may double an object,
    /// and every walk costs what it covers).
    pub fn apply(&self, object: &mut Value, limit: usize) -> Result<(), ApiError> {
        let patched = match self {
            Self::Merge(patch) => {
                // A merge patch puts its own values where they stand in it: the
                // result nests no deeper than the stored object or the patch.
                let mut patched = object.clone();
                json_patch::merge(&mut patched, patch);
                patched
            }
            Self::Json(patch) => apply_operations(object, &patch.0, limit)?,
        };
        if larger_than(&patched, limit) {
            return Err(ApiError::refused(Refusal::Invalid(Invalid::new(
                "",
                format!("the patched object would be larger than {limit} bytes"),
            ))));
        }
        *object = patched;
        Ok(())
    }

    /// Whether the patch sets `metadata.resourceVersion`: then it is a
    /// precondition, and a patch that lost a race is refused, not applied again.
    pub fn pins_version(&self) -> bool {
        match self {
            Self::Merge(patch) => patch
                .pointer("/metadata/resourceVersion")
                .is_some_and(|v| !v.is_null()),
            Self::Json(patch) => patch
                .0
                .iter()
                .any(|op| op.path().as_str().starts_with("/metadata/resourceVersion")),
        }
    }
}

fn apply_operations(
    object: &Value,
    operations: &[json_patch::PatchOperation],
    limit: usize,
) -> Result<Value, ApiError> {
    use json_patch::PatchOperation::{Add, Copy, Move, Replace};
    let mut budget = limit;
    let mut patched = object.clone();
    for (index, operation) in operations.iter().enumerate() {
        let refused = |message: String| {
            ApiError::refused(Refusal::Invalid(Invalid::new(
                shortened(operation.path().as_str()),
                message,
            )))
        };
        let placed_at = operation.path().count();
        let placed_depth = match operation {
            Add(op) => Some(walk(&op.value, &mut budget)),
            Replace(op) => Some(walk(&op.value, &mut budget)),
            Copy(op) => patched
                .pointer(&op.from.to_string())
                .map(|v| walk(v, &mut budget)),
            Move(op) => patched
                .pointer(&op.from.to_string())
                .map(|v| walk(v, &mut budget)),
            _ => None,
        };
        match placed_depth {
            Some(None) => {
                return Err(refused(format!(
                    "operation {index}: the JSON Patch copies and moves more than {limit} units of the object in all"
                )));
            }
            Some(Some(depth)) if placed_at + depth > MAX_NESTING => {
                return Err(refused(format!(
                    "operation {index} would nest the object deeper than {MAX_NESTING} levels"
                )));
            }
            _ => {}
        }
        json_patch::patch(&mut patched, std::slice::from_ref(operation)).map_err(|e| {
            // The reason names the operation's path, which may be as long as the body.
            refused(format!(
                "operation {index} of the JSON Patch does not apply: {}",
                shortened(&e.kind.to_string())
            ))
        })?;
    }
    Ok(patched)
}

/// How deep `value` nests (a scalar is 0), walked without recursion; each
/// node costs a unit of `budget`, and each string its length. None when the
/// budget runs out first.
fn walk(value: &Value, budget: &mut usize) -> Option<usize> {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        let cost = match value {
            Value::String(text) => 1 + text.len(),
            _ => 1,
        };
        *budget = budget.checked_sub(cost)?;
        match value {
            Value::Array(items) => pending.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(fields) => {
                for (key, field) in fields {
                    *budget = budget.checked_sub(key.len())?;
                    pending.push((field, depth + 1));
                }
            }
            _ => {}
        }
        deepest = deepest.max(depth + usize::from(value.is_array() || value.is_object()));
    }
    Some(deepest)
}

/// Whether `value` as JSON takes more than `limit` bytes; stops counting there.
fn larger_than(value: &Value, limit: usize) -> bool {
    struct Counter {
        left: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.left = self
                .left
                .checked_sub(bytes.len())
                .ok_or_else(|| std::io::Error::other("over the limit"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Counter { left: limit }, value).is_err()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_merge_patch_pins_the_version_only_when_it_names_one() {
        let named = Patch::Merge(json!({"metadata": {"resourceVersion": "7"}}));
        assert!(named.pins_version());
        assert!(!Patch::Merge(json!({"spec": {"x": 1}})).pins_version());
        let ops: json_patch::Patch = serde_json::from_value(
            json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}]),
        )
        .expect("patch");
        assert!(Patch::Json(ops).pins_version());
    }

    #[test]
    fn a_json_patch_that_does_not_apply_is_refused() {
        let ops: json_patch::Patch =
            serde_json::from_value(json!([{"op": "remove", "path": "/spec/absent"}]))
                .expect("patch");
        let mut object = json!({"spec": {}});
        let error = Patch::Json(ops)
            .apply(&mut object, 1024)
            .expect_err("refused");
        assert_eq!(error.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(object, json!({"spec": {}}), "nothing changed");

        // A path as long as a body is named, not echoed whole.
        let long = format!("/spec/{}", "x".repeat(400_000));
        let ops: json_patch::Patch =
            serde_json::from_value(json!([{"op": "remove", "path": long}])).expect("patch");
        let error = Patch::Json(ops)
            .apply(&mut object, 1 << 20)
            .expect_err("refused");
        assert!(error.message.len() < 1024, "{} bytes", error.message.len());
        assert!(error.message.contains("/spec/xxx"), "{}", error.message);
    }

    #[test]
    fn a_patch_cannot_nest_an_object_deeper_than_the_parser_reads() {
        let mut value = json!({});
        for _ in 0..90 {
            value = json!({ "a": value });
        }
        let deep_path = format!("/spec/x{}", "/a".repeat(80));
        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "add", "path": "/spec/x", "value": value.clone()},
            {"op": "replace", "path": deep_path, "value": value},
        ]))
        .expect("patch");
        let mut object = json!({"spec": {}});
        let error = Patch::Json(ops)
            .apply(&mut object, 1 << 20)
            .expect_err("refused");
        assert!(error.message.contains("deeper"), "{}", error.message);
        assert_eq!(object, json!({"spec": {}}), "nothing changed");
    }

    #[test]
    fn the_patched_object_may_not_outgrow_the_limit() {
        let mut object = json!({"metadata": {"annotations": {"a": "x".repeat(600)}}});
        let more = Patch::Merge(json!({"metadata": {"annotations": {"b": "y".repeat(600)}}}));
        let error = more.apply(&mut object, 1024).expect_err("refused");
        assert!(
            error.message.contains("larger than 1024"),
            "{}",
            error.message
        );
        assert!(object["metadata"]["annotations"].get("b").is_none());
    }

    #[test]
    fn walking_costs_what_it_covers() {
        let mut budget = 100;
        assert_eq!(walk(&json!({"a": [1, {"b": "cd"}]}), &mut budget), Some(3));
        assert!(budget < 100);
        let mut small = 3;
        assert_eq!(walk(&json!({"a": [1, 2, 3]}), &mut small), None);
    }

    #[test]
    fn copies_cannot_make_an_object_grow_past_the_limit() {
        // Each copy doubles the object: forty would make terabytes.
        let mut operations =
            vec![json!({"op": "add", "path": "/spec/a", "value": "x".repeat(100)})];
        for n in 0..40 {
            operations.push(json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{n}")}));
        }
        let ops: json_patch::Patch =
            serde_json::from_value(Value::Array(operations)).expect("patch");
        let mut object = json!({"spec": {}});
        let error = Patch::Json(ops)
            .apply(&mut object, 64 * 1024)
            .expect_err("refused");
        assert_eq!(error.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            error.message.contains("units of the object"),
            "{}",
            error.message
        );
        assert_eq!(object, json!({"spec": {}}), "nothing changed");
    }
}
