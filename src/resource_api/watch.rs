//! Watch responses: one JSON event per line (`{"type":"ADDED","object":{...}}`),
//! ending with an `ERROR` event carrying a `Status` when the watch falls too far
//! behind, and simply ending at shutdown so watchers do not hold a draining server,
//! or once the credential that opened it is revoked.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::json;

use super::ApiError;
use crate::store::WatchStream;

pub fn watch_response(
    stream: WatchStream,
    ends: impl Future<Output = ()> + Send + 'static,
) -> Response {
    let lines = stream
        .map(|item| {
            let line = match item {
                Ok(event) => serde_json::to_vec(&event),
                Err(error) => serde_json::to_vec(&json!({
                    "type": "ERROR",
                    "object": ApiError::from(error).to_status(),
                })),
            };
            let mut line = line.unwrap_or_else(|_| b"{\"type\":\"ERROR\"}".to_vec());
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        })
        .take_until(ends);
    (
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response()
}
