//! `DELETE /v2/service_instances/{instance_id}?service_id&plan_id`: unwind an
//! instance. 200/202 by outcome; 410 when there is no such instance (also for a
//! repeated DELETE, so orphan mitigation is idempotent); 422 while another
//! operation runs.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::{OsbPath, answer, completion_for};
use crate::osb::OsbError;
use crate::osb::types::{QueryParams, required};
use crate::provisioner::DeprovisionRequest;
use crate::state::AppState;

pub async fn deprovision(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let query = QueryParams::of(&uri)?;
    let completion = completion_for(&state, query.accepts_incomplete()?);
    let service_id = required("service_id", query.get("service_id"))?;
    let plan_id = required("plan_id", query.get("plan_id"))?;
    path.live_instance(&state).await?;
    let accepted = state
        .provisioner
        .deprovision(
            DeprovisionRequest {
                instance_id: path.instance_id.clone(),
                service_id,
                plan_id,
            },
            completion,
        )
        .await?;
    answer(
        &state,
        &path.instance_id,
        accepted,
        completion,
        StatusCode::OK,
        "deprovisioning",
    )
    .await
}
