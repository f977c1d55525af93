//! Request and response bodies: JSON or YAML in (by Content-Type), JSON or YAML out
//! (by Accept), with the body size limit enforced while reading.

use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ApiError;
use super::duplicate_fields::{Duplicates, duplicate_fields};
use crate::bodies::{MAX_NESTING, nests_deeper_than, read_limited};

/// An object to write, as read, with the fields its JSON gave twice
/// (`duplicate_fields`).
pub struct WrittenObject {
    pub value: serde_json::Value,
    pub duplicates: Duplicates,
}

pub async fn read_object(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<WrittenObject, ApiError> {
    let bytes = read_body(body, limit).await?;
    let value = parse_object(headers, &bytes)?.ok_or_else(|| {
        ApiError::bad_request("the request needs a body: the object as JSON or YAML")
    })?;
    let duplicates = match is_yaml(headers) {
        // YAML's parser refuses a repeated key.
        true => Duplicates::default(),
        false => duplicate_fields(&bytes),
    };
    Ok(WrittenObject { value, duplicates })
}

/// A body that may be left out (a DELETE's `DeleteOptions`): None when empty.
pub async fn read_optional_object(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Option<serde_json::Value>, ApiError> {
    let bytes = read_body(body, limit).await?;
    parse_object(headers, &bytes)
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    read_limited(body, limit)
        .await
        .map_err(|error| ApiError::new(error.status(), error.reason(), error.to_string()))
}

/// The body's media type; JSON when none is named.
fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
}

fn is_yaml(headers: &HeaderMap) -> bool {
    content_type(headers).contains("yaml")
}

/// The body as an object, by its Content-Type; None when empty.
fn parse_object(headers: &HeaderMap, bytes: &[u8]) -> Result<Option<serde_json::Value>, ApiError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let content_type = content_type(headers);
    let value: serde_json::Value = if is_yaml(headers) {
        serde_saphyr::from_slice_with_options(bytes, yaml_options(bytes.len()))
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")))?
    } else if content_type.contains("json") {
        if nests_deeper_than(bytes, MAX_NESTING) {
            return Err(ApiError::bad_request(format!(
                "the body nests deeper than {MAX_NESTING} levels"
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("Content-Type {content_type:?} is not application/json or application/yaml"),
        ));
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    Ok(Some(value))
}

pub fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("yaml") && !accept.contains("json"))
}

/// Answers with `value` as JSON, or YAML when the caller asked for it.
pub fn respond(status: StatusCode, headers: &HeaderMap, value: &impl Serialize) -> Response {
    if wants_yaml(headers) {
        match serde_saphyr::to_string(value) {
            Ok(text) => (
                status,
                [(CONTENT_TYPE, HeaderValue::from_static("application/yaml"))],
                text,
            )
                .into_response(),
            Err(error) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("cannot render YAML: {error}"),
            )
            .into_response(),
        }
    } else {
        (status, axum::Json(value)).into_response()
    }
}

/// A YAML object's cost bounded by its size: aliases let a few hundred bytes
/// stand for a quarter of a million nodes (seconds of CPU on an async worker,
/// tried), so nodes and events may not outnumber the body's bytes by much, and
/// aliases are few (a manifest rarely has any).
fn yaml_options(body_bytes: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = body_bytes.saturating_mul(2).clamp(1024, budget.max_nodes);
    budget.max_events = body_bytes.saturating_mul(4).clamp(4096, budget.max_events);
    budget.max_aliases = 256;
    budget.max_depth = MAX_NESTING;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}
