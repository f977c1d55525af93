//! The console's own endpoints: who a token is, a CESQL check for the
//! filter box, and the delivery counts the Mesh page's edge rates come from.
//! Each takes the admin token or a namespace token, as the resource API
//! does; an Application's credential is not for people.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{AuthError, Caller};
use crate::bodies::read_limited;
use crate::mesh::routing::ChannelSubscriber;
use crate::resources::missing_function;
use crate::state::AppState;

/// A CESQL expression is at most a few kilobytes (the compiler's own limit is
/// checked too); the request around it no more than this.
const MAX_BODY: usize = 64 * 1024;

/// A refusal, in the shape the control listener's other non-Kubernetes
/// answers have: `{"error": <reason>, "description": <message>}`.
pub struct Refusal {
    status: StatusCode,
    reason: &'static str,
    message: String,
}

pub(super) fn refusal(status: StatusCode, reason: &'static str, message: String) -> Refusal {
    Refusal {
        status,
        reason,
        message,
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.reason, "description": self.message});
        (self.status, Json(body)).into_response()
    }
}

pub(super) fn person(state: &AppState, headers: &HeaderMap) -> Result<Caller, Refusal> {
    match state.auth.bearer(headers) {
        Ok(Caller::Application(application)) => Err(refusal(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "the credential of Application {application:?} is for sending events, not for the console"
            ),
        )),
        Ok(caller) => Ok(caller),
        Err(AuthError::Forbidden(message)) => {
            Err(refusal(StatusCode::FORBIDDEN, "Forbidden", message))
        }
        Err(other) => Err(refusal(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            other.to_string(),
        )),
    }
}

/// `GET /console/api/whoami`: `{"caller": "admin"}` or
/// `{"caller": "namespace", "namespace": …}`.
pub async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let caller = person(&state, &headers)?;
    let body = match caller {
        Caller::Namespace(namespace) => json!({"caller": "namespace", "namespace": namespace}),
        _ => json!({"caller": "admin", "integrationNamespace": state.config.integration_namespace}),
    };
    Ok(Json(body).into_response())
}

/// A JSON request body within `MAX_BODY`.
pub(super) async fn read_json(body: Body) -> Result<Value, Refusal> {
    let bytes = read_limited(body, MAX_BODY)
        .await
        .map_err(|error| refusal(error.status(), error.reason(), error.to_string()))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| bad_request(format!("the body is not JSON: {error}")))
}

pub(super) fn bad_request(message: String) -> Refusal {
    refusal(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// `POST /console/api/cesql` with `{"expression": …}`: `{"valid": true}`, or
/// `{"valid": false, "error", "column", "offset"}` where the compiler stopped.
pub async fn check_cesql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    person(&state, &headers)?;
    let request = read_json(body).await?;
    let expression = request
        .get("expression")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("the body needs \"expression\": the CESQL text".into()))?;
    let answer = match cesql::Expression::parse(expression) {
        Ok(parsed) => match parsed.missing_function() {
            None => json!({"valid": true}),
            // As a Trigger's write refuses it; pointed at where the name is
            // first written.
            Some((name, arity)) => {
                let offset = expression
                    .to_ascii_uppercase()
                    .find(name)
                    .unwrap_or_default();
                json!({
                    "valid": false,
                    "error": missing_function(name, arity),
                    "column": expression[..offset].chars().count() + 1,
                    "offset": offset,
                })
            }
        },
        Err(error) => json!({
            "valid": false,
            "error": error.to_string(),
            "column": error.column(),
            "offset": error.offset(),
        }),
    };
    Ok(Json(answer).into_response())
}

/// `GET /console/api/rates`: how many events each Trigger's (and, for the
/// administrator, each HTTP Subscription's) subscriber took and how many it
/// did not (dead-lettered or given up) since this process started,
/// `{"triggers": {"ns/name": [delivered, failed]}, "subscriptions": {…},
/// "channels": {"ns/name": [taken, 0]}}` — what a Channel took reaches every
/// Broker subscribed to it.
/// The page turns two samples into events per second. Counted per process:
/// with several replicas each answers for its own deliveries.
pub async fn rates(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Refusal> {
    let caller = person(&state, &headers)?;
    let own = match &caller {
        Caller::Namespace(namespace) => Some(namespace.as_str()),
        _ => None,
    };
    let table = state.router.table();
    let mut triggers = serde_json::Map::new();
    for ((namespace, _), broker) in &table.brokers {
        if own.is_some_and(|own| own != namespace) {
            continue;
        }
        for (label, dispatcher) in broker.triggers.entries() {
            let (delivered, failed) = dispatcher.counts().read();
            triggers.insert(label.to_string(), json!([delivered, failed]));
        }
    }
    let mut subscriptions = serde_json::Map::new();
    let mut channels = serde_json::Map::new();
    if own.is_none() {
        for channel in table.channels.values() {
            let taken = channel.taken.load(std::sync::atomic::Ordering::Relaxed);
            channels.insert(
                format!("{}/{}", channel.namespace, channel.name),
                json!([taken, 0]),
            );
            for subscriber in &channel.subscribers {
                if let ChannelSubscriber::Http(dispatcher) = subscriber {
                    let (delivered, failed) = dispatcher.counts().read();
                    subscriptions.insert(
                        dispatcher.target().label.clone(),
                        json!([delivered, failed]),
                    );
                }
            }
        }
    }
    Ok(
        Json(json!({"triggers": triggers, "subscriptions": subscriptions, "channels": channels}))
            .into_response(),
    )
}
