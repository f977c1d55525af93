//! `OsbError`: every failure of the OSB API and the one place it becomes an OSB
//! error body (`{"error", "description"}`) with its status code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::bodies::BodyError;
use crate::provisioner::ProvisionError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OsbError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A body not read whole: too slow (408), or cut short (400).
    #[error("{0}")]
    Body(BodyError),
    #[error("{0}")]
    AsyncRequired(String),
    #[error("{0}")]
    Concurrency(String),
    #[error("{0}")]
    MaintenanceInfoConflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    OperationFailed(String),
    #[error("internal error")]
    Internal(String),
}

impl OsbError {
    /// The status code and the OSB error key (`error`) of the answer.
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            Self::Gone(_) => (StatusCode::GONE, "Gone"),
            Self::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "PreconditionFailed"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            Self::Body(error) => (error.status(), error.reason()),
            Self::AsyncRequired(_) => (StatusCode::UNPROCESSABLE_ENTITY, "AsyncRequired"),
            Self::Concurrency(_) => (StatusCode::UNPROCESSABLE_ENTITY, "ConcurrencyError"),
            Self::MaintenanceInfoConflict(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "MaintenanceInfoConflict")
            }
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "UnprocessableEntity"),
            Self::OperationFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "OperationFailed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The error key the answer's body names, e.g. `ConcurrencyError`.
    pub fn key(&self) -> &'static str {
        self.parts().1
    }
}

impl IntoResponse for OsbError {
    fn into_response(self) -> Response {
        let description = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "OSB request failed");
                "internal error; see the broker's log".to_string()
            }
            other => other.to_string(),
        };
        (
            self.status(),
            Json(json!({ "error": self.key(), "description": description })),
        )
            .into_response()
    }
}

impl From<StoreError> for OsbError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<ProvisionError> for OsbError {
    fn from(error: ProvisionError) -> Self {
        match error {
            ProvisionError::Conflict(m) => Self::Conflict(m),
            ProvisionError::Concurrency(m) => Self::Concurrency(m),
            ProvisionError::AsyncRequired(m) => Self::AsyncRequired(m),
            ProvisionError::Gone(m) => Self::Gone(m),
            ProvisionError::NotFound(m) => Self::NotFound(m),
            ProvisionError::BadRequest(m) => Self::BadRequest(m),
            ProvisionError::Unprocessable(m) => Self::Unprocessable(m),
            // The broker checks and asks again; never an answer.
            unchecked @ ProvisionError::Unchecked => Self::Internal(unchecked.to_string()),
            ProvisionError::Store(e) => e.into(),
        }
    }
}
