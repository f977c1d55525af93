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
use crate::bodies::read_limited;
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
) -> Result<Patch, ApiError> {
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
    let merge = match media_type.as_str() {
        MERGE => true,
        STRATEGIC if merges_alike => true,
        JSON => false,
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
        Ok(Patch::Merge(patch))
    } else {
        serde_json::from_slice(&bytes)
            .map(Patch::Json)
            .map_err(invalid)
    }
}

impl Patch {
    /// Applies the patch to the stored object (as JSON).
    pub fn apply(&self, object: &mut Value) -> Result<(), ApiError> {
        match self {
            Self::Merge(patch) => {
                json_patch::merge(object, patch);
                Ok(())
            }
            Self::Json(patch) => json_patch::patch(object, patch).map_err(|e| {
                ApiError::refused(Refusal::Invalid(Invalid::new(
                    e.path.to_string(),
                    format!(
                        "operation {} of the JSON Patch does not apply: {}",
                        e.operation, e.kind
                    ),
                )))
            }),
        }
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
                .any(|op| op_path(op).starts_with("/metadata/resourceVersion")),
        }
    }
}

fn op_path(op: &json_patch::PatchOperation) -> String {
    use json_patch::PatchOperation::{Add, Copy, Move, Remove, Replace, Test};
    match op {
        Add(op) => op.path.to_string(),
        Remove(op) => op.path.to_string(),
        Replace(op) => op.path.to_string(),
        Move(op) => op.path.to_string(),
        Copy(op) => op.path.to_string(),
        Test(op) => op.path.to_string(),
    }
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
        let error = Patch::Json(ops).apply(&mut object).expect_err("refused");
        assert_eq!(error.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(object, json!({"spec": {}}), "nothing changed");
    }
}
