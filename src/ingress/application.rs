//! `POST /{application}/events` (and `/v2/events`): CloudEvents in any mode;
//! `POST /{application}/v1/events`: Kyma's legacy JSON. Both need the
//! Application's credential (its token, or a client certificate the Connector
//! issued it, on a TLS listener); the events' `source` becomes the Application's
//! name.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cloudevents::AttributesWriter;
use serde_json::json;

use super::request::{
    Entrance, Incoming, accepted, arrive, check_serving, decode, enqueue, prepared, read_body,
};
use super::{IngressError, schema};
use crate::auth::ClientCertificate;
use crate::ids::random_uuid;
use crate::mesh::event::PreparedEvent;
use crate::mesh::event::{LegacyError, read_legacy};
use crate::mesh::routing::{ApplicationRoute, ChannelTarget};
use crate::state::AppState;

fn route_of(
    state: &AppState,
    headers: &HeaderMap,
    certificate: Option<&ClientCertificate>,
    application: &str,
) -> Result<Arc<ApplicationRoute>, IngressError> {
    check_serving(state)?;
    // Authorise before looking up: a foreign credential learns nothing about
    // which Applications exist.
    let (caller, by_certificate) = state.auth.application_sender(headers, certificate)?;
    caller.may_send_for(application)?;
    let route = state
        .router
        .table()
        .applications
        .get(application)
        .cloned()
        .ok_or_else(|| IngressError::NotFound(format!("no Application {application:?}")))?;
    if let Some(certificate) = by_certificate
        && !certificate.issued_to(&route.uid)
    {
        return Err(IngressError::Unauthorized(format!(
            "the client certificate was issued to an earlier Application named {application:?}"
        )));
    }
    Ok(route)
}

/// Stamps and routes events that passed every check.
async fn dispatch(
    state: &AppState,
    route: &ApplicationRoute,
    headers: &HeaderMap,
    events: Vec<Incoming>,
) -> Result<(), IngressError> {
    match &route.channel {
        None => Err(IngressError::Unavailable(format!(
            "the Channel of Application {} is not ready yet",
            route.name
        ))),
        Some(ChannelTarget::Served(channel)) => {
            enqueue(state, Entrance::Channel(channel), prepared(headers, events)).await
        }
        Some(ChannelTarget::Knative(url)) => {
            let events: Vec<PreparedEvent> = prepared(headers, events);
            state
                .router
                .forwarder
                .forward(url, &events)
                .await
                .map_err(|e| IngressError::BadGateway(e.to_string()))?;
            state.metrics.events_accepted(events.len());
            Ok(())
        }
    }
}

/// The Application's events: `source` is the Application, the payload matches
/// its schema, and they arrive as at every ingress.
fn stamp(route: &ApplicationRoute, events: &mut [Incoming]) -> Result<(), IngressError> {
    for incoming in events.iter_mut() {
        incoming.event.set_source(route.name.as_str());
        schema::check(route, &incoming.event)?;
    }
    arrive(events)
}

pub async fn cloudevents(
    State(state): State<AppState>,
    Path(application): Path<String>,
    certificate: Option<Extension<ClientCertificate>>,
    request: Request,
) -> Result<Response, IngressError> {
    // The request's own headers: the `HeaderMap` extractor would copy them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let route = route_of(&state, headers, certificate.as_deref(), &application)?;
    let body = read_body(&state, body).await?;
    let mut events = decode(&state, headers, body)?;
    stamp(&route, &mut events)?;
    dispatch(&state, &route, headers, events).await?;
    Ok(accepted())
}

pub async fn legacy(
    State(state): State<AppState>,
    Path(application): Path<String>,
    certificate: Option<Extension<ClientCertificate>>,
    request: Request,
) -> Result<Response, IngressError> {
    // The request's own headers: the `HeaderMap` extractor would copy them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let route = route_of(&state, headers, certificate.as_deref(), &application)?;
    let body = read_body(&state, body).await?;
    let event = match read_legacy(&body, &application, random_uuid) {
        Ok(event) => event,
        Err(error) => return Ok((StatusCode::BAD_REQUEST, Json(error)).into_response()),
    };
    let id = cloudevents::AttributesReader::id(&event).to_string();
    let mut events = vec![Incoming::of(event)];
    // A payload its schema refuses is answered in Kyma's error body too, as
    // the `data` field's (`read_legacy` already checked what else `stamp`
    // could refuse: the id, the type, the time).
    match stamp(&route, &mut events) {
        Err(IngressError::InvalidEvent(why)) => {
            return Ok((StatusCode::BAD_REQUEST, Json(LegacyError::data(&why))).into_response());
        }
        stamped => stamped?,
    }
    dispatch(&state, &route, headers, events).await?;
    Ok((StatusCode::OK, Json(json!({ "event-id": id }))).into_response())
}
