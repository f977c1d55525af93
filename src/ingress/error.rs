//! `IngressError`: every refusal of the events listener, as a status code and a
//! JSON body naming the problem; 429 and 503 say when to come back.

use axum::Json;
use axum::http::header::{ALLOW, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::bodies::BodyError;
use crate::mesh::event::EventError;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("{0}")]
    InvalidEvent(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("only POST (and OPTIONS) is accepted here")]
    MethodNotAllowed,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// Within the body limit, but more than the event engine stores as one event.
    #[error("{0}")]
    EventTooLarge(String),
    /// Not too large, but not read whole either (too slow, cut short).
    #[error("{0}")]
    Body(BodyError),
    /// A structured-mode event format other than JSON.
    #[error("{0}")]
    UnsupportedFormat(String),
    /// More events than one subscriber's queue can ever hold: retrying cannot help.
    #[error(
        "a batch carries at most {0} events (a subscriber's queue, --subscriber-queue); send it in parts"
    )]
    BatchTooLarge(usize),
    #[error("too many events are waiting for delivery; retry later")]
    Overloaded,
    /// Durable delivery: the log the events go to holds all its disk budget allows.
    #[error("{0}: its consumers are behind; retry later")]
    BudgetFull(String),
    #[error("{0}")]
    Unavailable(String),
    /// The Knative Channel events are handed to did not take them.
    #[error("{0}")]
    BadGateway(String),
}

impl From<EventError> for IngressError {
    fn from(error: EventError) -> Self {
        Self::InvalidEvent(error.message)
    }
}

impl From<AuthError> for IngressError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Forbidden(message) => Self::Forbidden(message),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let (status, error) = match &self {
            Self::InvalidEvent(_) => (StatusCode::BAD_REQUEST, "InvalidEvent"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::Body(error) => (error.status(), error.reason()),
            Self::TooLarge(_) | Self::EventTooLarge(_) | Self::BatchTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge")
            }
            Self::UnsupportedFormat(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            Self::Overloaded | Self::BudgetFull(_) => (StatusCode::TOO_MANY_REQUESTS, "Overloaded"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "ChannelRefused"),
        };
        let mut response = (
            status,
            Json(json!({ "error": error, "description": self.to_string() })),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed => {
                headers.insert(ALLOW, HeaderValue::from_static("POST, OPTIONS"));
            }
            Self::Overloaded | Self::BudgetFull(_) | Self::Unavailable(_) | Self::BadGateway(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
