//! `POST /channels/{namespace}/{channel}`: the address a Channel publishes, for
//! senders with a token of its namespace; fans out to its subscribers.

use axum::extract::{Path, Request, State};
use axum::response::Response;

use super::IngressError;
use super::request::{
    Entrance, Senders, accepted, enqueue, namespace_sender, namespaced_events, prepared,
};
use crate::auth::Caller;
use crate::state::AppState;

pub async fn receive(
    State(state): State<AppState>,
    Path((namespace, channel)): Path<(String, String)>,
    request: Request,
) -> Result<Response, IngressError> {
    // The request's own headers: the `HeaderMap` extractor would copy them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let caller = namespace_sender(&state, headers, &namespace, Senders::AsConfigured)?;
    let table = state.router.table();
    let route = table
        .channel(&namespace, &channel)
        .ok_or_else(|| IngressError::NotFound(format!("no Channel {namespace}/{channel}")))?;
    if let Some(application) = &route.application
        && caller != Some(Caller::Admin)
    {
        return Err(IngressError::Forbidden(format!(
            "Channel {namespace}/{channel} carries Application {application}'s events: send them to /{application}/events"
        )));
    }
    let events = namespaced_events(&state, headers, body).await?;
    enqueue(&state, Entrance::Channel(route), prepared(headers, events)).await?;
    Ok(accepted())
}
