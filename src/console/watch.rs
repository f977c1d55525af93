//! `GET /console/api/watch`: every kind the page shows, in one stream — one
//! JSON line per change, `{"kind", "type", "object"}`, each kind starting with
//! all its objects as ADDED. One connection instead of one per kind: a browser
//! keeps at most six to a host, and six open watches would leave no room for
//! the page's other requests. A namespace token gets its namespace's Brokers,
//! Triggers and ApplicationMappings only (what the resource API lets it read). The stream ends (and the page watches again) when any
//! kind's watch fails, at shutdown, and once the credential that opened it is
//! revoked.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::select_all;
use serde_json::json;

use super::api::{Refusal, person, refusal};
use crate::auth::{Caller, until_revoked};
use crate::resources::{
    AccessToken, Application, ApplicationMapping, Broker, Channel, KindSpec, ServiceInstance,
    Subscription, Trigger, kind_of,
};
use crate::state::AppState;
use crate::store::LabelSelector;
use k8s_openapi::api::core::v1::Namespace;

/// The kinds and where to watch them, by who asks.
fn watched(caller: &Caller) -> Vec<(&'static str, &'static KindSpec, Option<String>)> {
    match caller {
        Caller::Namespace(namespace) => vec![
            ("brokers", kind_of::<Broker>(), Some(namespace.clone())),
            ("triggers", kind_of::<Trigger>(), Some(namespace.clone())),
            (
                "applicationmappings",
                kind_of::<ApplicationMapping>(),
                Some(namespace.clone()),
            ),
        ],
        _ => vec![
            ("applicationmappings", kind_of::<ApplicationMapping>(), None),
            ("accesstokens", kind_of::<AccessToken>(), None),
            ("applications", kind_of::<Application>(), None),
            ("channels", kind_of::<Channel>(), None),
            ("subscriptions", kind_of::<Subscription>(), None),
            ("brokers", kind_of::<Broker>(), None),
            ("triggers", kind_of::<Trigger>(), None),
            ("namespaces", kind_of::<Namespace>(), None),
            ("serviceinstances", kind_of::<ServiceInstance>(), None),
        ],
    }
}

pub async fn watch(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Refusal> {
    let caller = person(&state, &headers)?;
    // One place for the whole stream, however many kinds it follows.
    let slot = caller.take_watch_slot(&state.watch_slots).map_err(|why| {
        refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            why.to_string(),
        )
    })?;
    let store = state.store.raw();
    let everything = LabelSelector::everything();
    let mut streams = Vec::new();
    for (name, kind, namespace) in watched(&caller) {
        let stream = match store
            .watch(kind, namespace.as_deref(), &everything, None)
            .await
        {
            Ok(stream) => stream,
            Err(error) => {
                let line = json!({"kind": name, "type": "ERROR", "message": error.to_string()});
                let answer = ([(CONTENT_TYPE, "application/json")], format!("{line}\n"));
                return Ok(answer.into_response());
            }
        };
        streams.push(stream.map(move |item| (name, item)).boxed());
    }
    let revoked = until_revoked(
        state.auth.clone(),
        headers.clone(),
        caller,
        state.shutdown.clone(),
    );
    let ends = async move {
        // The place is given back when the stream ends.
        let _slot = slot;
        revoked.await;
    };
    let lines = select_all(streams)
        .scan(false, |failed, (name, item)| {
            if *failed {
                return futures::future::ready(None);
            }
            let line = match item {
                Ok(event) => json!({"kind": name, "type": event.type_, "object": event.object}),
                Err(error) => {
                    *failed = true;
                    json!({"kind": name, "type": "ERROR", "message": error.to_string()})
                }
            };
            futures::future::ready(Some(Ok::<_, Infallible>(Bytes::from(format!("{line}\n")))))
        })
        .take_until(ends);
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response())
}
