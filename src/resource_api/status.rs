//! `ApiError`: every failure of the resource API, answered as a Kubernetes `Status`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::resources::{Invalid, Refusal};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub field: Option<Invalid>,
}

impl ApiError {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// A request option of the right shape with a value Kubernetes does not
    /// support (`dryRun`, `propagationPolicy`): 422, as its API server answers.
    pub fn unsupported_option(option: &str, value: &str, supported: &str) -> Self {
        Self::refused(Refusal::Invalid(Invalid::new(
            option,
            format!("Unsupported value {value:?}: supported values: {supported}"),
        )))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
    }

    /// The body has a field of the wrong shape (400) or breaking a rule (422).
    pub fn refused(refusal: Refusal) -> Self {
        let (code, reason) = match &refusal {
            Refusal::Malformed(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            Refusal::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        };
        let detail = refusal.detail().clone();
        Self {
            code,
            reason,
            message: detail.to_string(),
            field: Some(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::NotFound { .. } | StoreError::NamespaceNotFound(_) => {
                Self::not_found(message)
            }
            StoreError::AlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, "AlreadyExists", message)
            }
            StoreError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "Conflict", message),
            StoreError::Invalid(detail) => Self::refused(Refusal::Invalid(detail)),
            StoreError::Expired(_) => Self::new(StatusCode::GONE, "Expired", message),
            StoreError::TooLarge { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", message)
            }
            // A deployment problem the operator must see, not a secret: say it.
            StoreError::NotPermitted(_) => {
                tracing::error!(%error, "meshbroker lacks a right on the API server");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
            }
            StoreError::Internal(_) => {
                tracing::error!(%error, "store failure in the resource API");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", error.to_string())
    }
}

impl ApiError {
    pub fn to_status(&self) -> serde_json::Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(field) = &self.field {
            status["details"] = json!({
                "causes": [{
                    "reason": if self.reason == "Invalid" { "FieldValueInvalid" } else { "FieldValueTypeInvalid" },
                    "field": field.field,
                    "message": field.message,
                }]
            });
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code, Json(self.to_status())).into_response()
    }
}
