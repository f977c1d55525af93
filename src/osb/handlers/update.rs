//! `PATCH /v2/service_instances/{instance_id}`: change an instance's parameters.
//! The plan is not updateable (422 when asked to change it); unchanged parameters
//! answer 200 at once; changed ones run an update operation (202, or 200 when it
//! finishes within the synchronous wait).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::{OsbPath, answer, check_maintenance_info, completion_for};
use crate::osb::OsbError;
use crate::osb::catalog::{Catalog, check_parameters};
use crate::osb::namespace::target_namespace;
use crate::osb::types::{QueryParams, UpdateBody, object_or_absent, read_json, required};
use crate::provisioner::UpdateRequest;
use crate::state::AppState;

pub async fn update(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
    body: Body,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let completion = completion_for(&state, QueryParams::of(&uri)?.accepts_incomplete()?);
    let body: UpdateBody = read_json(body, state.config.max_body_bytes).await?;
    let service_id = required("service_id", body.service_id.as_ref())?;
    let plan_id = body
        .plan_id
        .as_ref()
        .map(|p| required("plan_id", Some(p)))
        .transpose()?;
    let context = object_or_absent("context", body.context)?;
    let parameters = object_or_absent("parameters", body.parameters)?;

    let catalog = Catalog::load(&state.store).await?;
    if catalog.class(&service_id).is_none() {
        return Err(OsbError::BadRequest(format!(
            "service_id {service_id} is not in the catalog"
        )));
    }
    // A plan_id other than the instance's is refused by the provisioner with 422:
    // the plan is not updateable, whichever plan is asked for.
    if let Some(instance) = path.live_instance(&state).await? {
        let has_namespace = context.as_ref().and_then(|c| c.get("namespace")).is_some();
        if has_namespace && target_namespace(None, context.as_ref())? != instance.spec.namespace {
            return Err(OsbError::Unprocessable(format!(
                "instance {} lives in namespace {}; it cannot move",
                path.instance_id, instance.spec.namespace
            )));
        }
    }
    check_maintenance_info(body.maintenance_info.as_ref())?;
    if let Some(parameters) = &parameters {
        check_parameters(parameters).map_err(OsbError::BadRequest)?;
    }

    let accepted = state
        .provisioner
        .update(
            UpdateRequest {
                instance_id: path.instance_id.clone(),
                service_id,
                plan_id,
                parameters,
                context,
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
        "the update",
    )
    .await
}
