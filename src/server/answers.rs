//! Every answer of both listeners is JSON that names the problem, also the ones
//! axum and its extractors make themselves as plain text (a query string given
//! twice, a path that is not UTF-8, a body that does not parse): a Kubernetes
//! `Status` under the resource API's prefixes, `{"error", "description"}` (the
//! OSB error body, which the events listener uses too) elsewhere. And request
//! headers have a limit of their own, below hyper's buffer. The same middleware
//! counts every answer in `meshbroker_http_requests_total`: one layer rather
//! than two, as each layer costs every request a boxed future and a copy of
//! the service.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::telemetry::{Metrics, count_request};

/// All request headers together (names and values). Far above what any client
/// sends (a few KiB); a 200 KB `ce-` header is refused rather than carried into
/// every delivery.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How much of a plain-text error is kept as the JSON description.
const MAX_DESCRIPTION_BYTES: usize = 4096;

pub fn json_error(
    uri: &Uri,
    status: StatusCode,
    reason: &'static str,
    message: String,
) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/apis/") {
        crate::resource_api::ApiError::new(status, reason, message).into_response()
    } else {
        (
            status,
            axum::Json(serde_json::json!({"error": reason, "description": message})),
        )
            .into_response()
    }
}

/// The error key of a status, as Kubernetes names its reasons.
fn reason_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
        status if status.is_server_error() => "InternalError",
        _ => "BadRequest",
    }
}

/// A listener's middleware: the header limit, JSON for plain-text refusals,
/// and the request counted by route, method and status.
pub async fn uniform(
    State((metrics, listener)): State<(Arc<Metrics>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = answer(listener, request, next).await;
    count_request(
        &metrics,
        listener,
        route,
        &method,
        response.status().as_u16(),
    );
    response
}

async fn answer(listener: &str, request: Request, next: Next) -> Response {
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let uri = request.uri().clone();
    let sent_bearer = request.headers().get(AUTHORIZATION).is_some_and(|v| {
        v.as_bytes()
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"bearer "))
    });
    if header_bytes > MAX_HEADER_BYTES {
        return json_error(
            &uri,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HeadersTooLarge",
            format!(
                "the request's headers are {header_bytes} bytes together; at most {MAX_HEADER_BYTES} are accepted"
            ),
        );
    }
    let coded = crate::bodies::coded(&request);
    let refused_coding = coded.is_some();
    let request = match coded {
        Some(codings) => request.map(|_| crate::bodies::refusing(codings)),
        None => request,
    };
    let mut response = next.run(request).await;
    let status = response.status();
    if refused_coding && status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        // RFC 9110 §15.5.16: the codings that would have been accepted.
        response
            .headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    if status == StatusCode::UNAUTHORIZED && !response.headers().contains_key(WWW_AUTHENTICATE) {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            challenge(listener, uri.path(), sent_bearer),
        );
    }
    let plain_text = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|c| c.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain_text {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_DESCRIPTION_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|_| "the request was refused".to_string());
    let mut answer = json_error(&uri, status, reason_of(status), text);
    // Keep what the refusal said besides its body (Allow, Retry-After …).
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// What a 401 asks for (RFC 7235 §3.1: it MUST name a challenge): the OSB API
/// takes Basic credentials or the admin's bearer token, everything else a bearer
/// token (the Connector's certificates are asked for by TLS, not here). A caller
/// that sent a bearer token is asked for one again, never for Basic: a browser
/// (the console, trying the OSB API with a namespace token) would open its
/// password dialog over the page for a Basic challenge.
fn challenge(listener: &str, path: &str, sent_bearer: bool) -> HeaderValue {
    HeaderValue::from_static(if is_osb(listener, path) && !sent_bearer {
        r#"Basic realm="meshbroker", Bearer realm="meshbroker""#
    } else {
        r#"Bearer realm="meshbroker""#
    })
}

/// Whether `path` is the OSB API's: `/v2/…` or `/{namespace}/v2/…` on the
/// control listener.
fn is_osb(listener: &str, path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').split('/');
    listener == "control" && (segments.next() == Some("v2") || segments.next() == Some("v2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_kubernetes_status_reasons() {
        assert_eq!(reason_of(StatusCode::BAD_REQUEST), "BadRequest");
        assert_eq!(reason_of(StatusCode::CONFLICT), "BadRequest");
        assert_eq!(
            reason_of(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "UnsupportedMediaType"
        );
        assert_eq!(reason_of(StatusCode::BAD_GATEWAY), "InternalError");
    }
}
