//! `GET /apis/eventing.knative.dev/v1/namespaces/{namespace}/brokers/{name}/tail`:
//! the Broker's live tail (see `mesh::tap`), one JSON object per line — first
//! `{"type":"TAILING"}` once the tail is open, then `RECEIVED`, `REFUSED`,
//! `DELIVERED`, `DEAD_LETTERED`, `UNDELIVERABLE` and `SKIPPED` records as
//! they happen. For
//! the administrator and the Broker's namespace, as reading the Broker is. It
//! ends at shutdown; the console's Events page and `meshbroker tail` read it.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::json;

use super::ApiError;
use super::access::Intent;
use super::handlers::resolve;
use crate::auth::until_revoked;
use crate::resources::{Broker, kind_of};
use crate::state::AppState;

pub async fn tail(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (caller, target) = resolve(&state, &headers, &params, Intent::Read)?;
    if !std::ptr::eq(target.kind, kind_of::<Broker>()) {
        return Err(ApiError::not_found(format!(
            "{} have no tail: only Brokers do",
            target.kind.plural
        )));
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    // A Broker that does not exist has nothing to tail: say so now.
    state
        .store
        .raw()
        .get(target.kind, Some(&namespace), target.name())
        .await?;
    // A tail is held open as a watch is, and counts against the caller's
    // watches: without that, only `--max-connections` bounded how many one
    // namespace's token held (an outside probe opened a thousand).
    let slot = caller
        .take_watch_slot(&state.watch_slots)
        .map_err(ApiError::too_many_open)?;
    let tail = state.router.taps.watch(&namespace, target.name());
    let opened = json!({"type": "TAILING", "namespace": namespace, "broker": target.name()});
    let first = futures::stream::once(futures::future::ready(line(&opened)));
    let records = futures::stream::unfold((tail, slot), |(mut tail, slot)| async move {
        let record = tail.next().await?;
        Some((line(&*record), (tail, slot)))
    });
    let ends = until_revoked(
        state.auth.clone(),
        headers.clone(),
        caller,
        state.shutdown.clone(),
    );
    let lines = first
        .chain(records)
        .map(Ok::<_, Infallible>)
        .take_until(ends);
    Ok((
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

fn line(value: &impl serde::Serialize) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{\"type\":\"ERROR\"}".to_vec());
    line.push(b'\n');
    Bytes::from(line)
}
