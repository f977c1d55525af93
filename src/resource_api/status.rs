//! `ApiError`: every failure of the resource API, answered as a Kubernetes `Status`.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::resources::{Invalid, Refusal};
use crate::store::{NoSlot, StoreError};

#[derive(Debug)]
pub struct ApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    /// `details` as Kubernetes fills it: the field a refusal is about, the
    /// object that was not found or clashed, a cause clients act on.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
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
        let detail = refusal.detail();
        let cause = if reason == "Invalid" {
            "FieldValueInvalid"
        } else {
            "FieldValueTypeInvalid"
        };
        Self {
            code,
            reason,
            message: detail.to_string(),
            details: Some(json!({
                "causes": [{"reason": cause, "field": detail.field, "message": detail.message}]
            })),
        }
    }

    /// 429, as Kubernetes answers a request it has no room for: the client
    /// waits `retryAfterSeconds` (and `Retry-After`) and tries again.
    pub fn too_many_open(why: NoSlot) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            why.to_string(),
        )
        .with_details(json!({"retryAfterSeconds": 1}))
    }

    fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Who a NotFound, AlreadyExists or Conflict is about, as Kubernetes names
/// it: the object's name, and its kind as the resource (plural) and group.
fn about(kind: &str, name: &str) -> serde_json::Value {
    let spec = crate::resources::kinds()
        .iter()
        .find(|spec| spec.kind == kind);
    let mut details = json!({
        "name": name,
        "kind": spec.map_or(kind, |spec| spec.plural.as_str()),
    });
    if let Some(spec) = spec.filter(|spec| !spec.group.is_empty()) {
        details["group"] = json!(spec.group);
    }
    details
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::NotFound { kind, name } => {
                Self::not_found(message).with_details(about(&kind, &name))
            }
            StoreError::NamespaceNotFound(name) => {
                Self::not_found(message).with_details(about("Namespace", &name))
            }
            StoreError::AlreadyExists { kind, name } => {
                Self::new(StatusCode::CONFLICT, "AlreadyExists", message)
                    .with_details(about(&kind, &name))
            }
            StoreError::Conflict { kind, name, .. } => {
                Self::new(StatusCode::CONFLICT, "Conflict", message)
                    .with_details(about(&kind, &name))
            }
            StoreError::Invalid(detail) => Self::refused(Refusal::Invalid(detail)),
            StoreError::Expired(_) => Self::new(StatusCode::GONE, "Expired", message),
            // The cause and the wait are what client-go's reflector reads
            // to list again from the latest revision.
            StoreError::TooLarge { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", message).with_details(json!({
                    "causes": [{
                        "reason": "ResourceVersionTooLarge",
                        "message": "Too large resource version",
                    }],
                    "retryAfterSeconds": 1,
                }))
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
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.code, Json(self.to_status())).into_response();
        // As Kubernetes sends it: the header whenever the details ask for a wait.
        let wait = self
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_u64());
        if let Some(seconds) = wait.filter(|s| *s > 0) {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
