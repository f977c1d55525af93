//! The Connector's refusals, in Kyma's error shape (`{"code", "error"}`) so
//! clients written for Kyma read them unchanged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::bodies::BodyError;
use crate::pki::CsrError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(
        "the Connector is off: it needs TLS on the events listener (--events-tls-cert/--events-tls-key or --events-tls-hosts)"
    )]
    Off,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0} is not served here; the route takes {1}")]
    MethodNotAllowed(String, &'static str),
    #[error("{0}")]
    Body(#[from] BodyError),
}

impl From<AuthError> for ConnectorError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Forbidden(message) => Self::Forbidden(message),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

impl From<CsrError> for ConnectorError {
    fn from(error: CsrError) -> Self {
        match error {
            CsrError::Signing(message) => Self::Internal(message),
            refused => Self::BadRequest(refused.to_string()),
        }
    }
}

impl From<StoreError> for ConnectorError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl IntoResponse for ConnectorError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Off => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Body(error) => error.status(),
        };
        if let Self::Internal(message) = &self {
            tracing::error!(%message, "the Connector failed");
        }
        let body = serde_json::json!({"code": status.as_u16(), "error": self.to_string()});
        let mut response = (status, Json(body)).into_response();
        if let Self::MethodNotAllowed(_, allowed) = self {
            response.headers_mut().insert(
                axum::http::header::ALLOW,
                axum::http::HeaderValue::from_static(allowed),
            );
        }
        response
    }
}
