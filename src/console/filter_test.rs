//! `POST /console/api/filter-test`: "test this filter" — whether a Trigger's
//! filter (`filter` and/or `filters`, as a Trigger's spec has them) lets a
//! sample event (CloudEvents' JSON format) through, decided by the same
//! compiled filter the dataplane runs: `{"passes": bool}`, with `limit` when
//! a CESQL limit stopped it. A filter that does not compile is 400 naming the
//! field, as the resource API would refuse the Trigger.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::{Refusal, bad_request, person, read_json};
use crate::mesh::event::{check_text, read_structured};
use crate::mesh::filter::Filter;
use crate::resources::{Trigger, TriggerSpec};
use crate::state::AppState;

pub async fn filter_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    person(&state, &headers)?;
    let request = read_json(body).await?;
    // A spec around the filter alone: where it would deliver does not matter.
    let spec = json!({
        "broker": "test",
        "subscriber": {"uri": "http://test.invalid/"},
        "filter": request.get("filter").cloned().unwrap_or(Value::Null),
        "filters": request.get("filters").cloned().unwrap_or(Value::Null),
    });
    let spec: TriggerSpec = serde_json::from_value(spec)
        .map_err(|error| bad_request(format!("the filter is not a Trigger's: {error}")))?;
    // The checks a Trigger's write runs (attribute names, filter shapes), then
    // the compile the dataplane runs: what this accepts, a Trigger may hold.
    Trigger::new("filter-test", spec.clone())
        .validate()
        .map_err(|invalid| bad_request(invalid.to_string()))?;
    let filter = Filter::of_trigger(&spec).map_err(|invalid| bad_request(invalid.to_string()))?;
    let event = request
        .get("event")
        .ok_or_else(|| bad_request("the body needs \"event\": a CloudEvent in JSON".into()))?;
    // Checked as the ingress checks it: an event it would refuse passes nothing.
    let event = read_structured(event.to_string().as_bytes())
        .and_then(|event| check_text(&event).map(|()| event))
        .map_err(|error| bad_request(format!("event: {error}")))?;
    let answer = match filter.try_matches(&event) {
        Ok(passes) => json!({"passes": passes}),
        Err(limit) => json!({"passes": false, "limit": limit.to_string()}),
    };
    Ok(Json(answer).into_response())
}
