//! The answers more than one handler gives.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::osb::details::Outcome;

/// `{}` with a status code.
pub fn empty(status: StatusCode) -> Response {
    (status, Json(json!({}))).into_response()
}

/// A provision, update or deprovision: 202 with the operation the platform
/// follows; once done, `done_now` when this request did it (201 for a
/// provision), 200 when an earlier one had.
pub fn outcome(outcome: Outcome, done_now: StatusCode) -> Response {
    match outcome {
        Outcome::InProgress { operation } => (
            StatusCode::ACCEPTED,
            Json(json!({ "operation": operation })),
        )
            .into_response(),
        Outcome::Done { by_this_request } => empty(if by_this_request {
            done_now
        } else {
            StatusCode::OK
        }),
    }
}
