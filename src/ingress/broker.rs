//! `POST /{namespace}/{broker}`: events from senders inside the namespace, with a
//! token of that namespace. All-or-nothing: 202, or 429 with nothing queued.

use axum::extract::{Path, Request, State};
use axum::response::Response;

use super::IngressError;
use super::request::{
    Entrance, Senders, accepted, enqueue, namespace_sender, namespaced_events, prepared,
};
use crate::state::AppState;

pub async fn receive(
    state: State<AppState>,
    names: Path<(String, String)>,
    request: Request,
) -> Result<Response, IngressError> {
    receive_from(Senders::AsConfigured, state, names, request).await
}

/// The console's test events: always with a token (`Senders::WithToken`).
pub async fn receive_from_console(
    state: State<AppState>,
    names: Path<(String, String)>,
    request: Request,
) -> Result<Response, IngressError> {
    receive_from(Senders::WithToken, state, names, request).await
}

async fn receive_from(
    senders: Senders,
    State(state): State<AppState>,
    Path((namespace, broker)): Path<(String, String)>,
    request: Request,
) -> Result<Response, IngressError> {
    // The request's own headers: the `HeaderMap` extractor would copy them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    namespace_sender(&state, headers, &namespace, senders)?;
    let table = state.router.table();
    let route = table
        .broker(&namespace, &broker)
        .ok_or_else(|| IngressError::NotFound(format!("no Broker {namespace}/{broker}")))?;
    let events = namespaced_events(&state, headers, body).await?;
    enqueue(&state, Entrance::Broker(route), prepared(headers, events)).await?;
    Ok(accepted())
}
