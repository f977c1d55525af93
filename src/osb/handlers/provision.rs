//! `PUT /v2/service_instances/{instance_id}`: provision an Event ServiceClass into
//! a namespace. 201/200/202 by outcome; 400 for bad or unknown input and for a
//! namespace the Application is not mapped into; 409 for the same id with other
//! attributes; 422 for AsyncRequired, MaintenanceInfoConflict and ConcurrencyError.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::{OsbPath, answer, check_maintenance_info, completion_for};
use crate::osb::OsbError;
use crate::osb::catalog::{Catalog, check_parameters};
use crate::osb::headers::OriginatingIdentity;
use crate::osb::namespace::{check_platform, target_namespace};
use crate::osb::types::{ProvisionBody, QueryParams, object_or_absent, read_json, required};
use crate::provisioner::ProvisionRequest;
use crate::resources::ApplicationMapping;
use crate::state::AppState;

pub async fn provision(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
    identity: Option<Extension<OriginatingIdentity>>,
    body: Body,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let completion = completion_for(&state, QueryParams::of(&uri)?.accepts_incomplete()?);
    let body: ProvisionBody = read_json(body, state.config.max_body_bytes).await?;
    let service_id = required("service_id", body.service_id.as_ref())?;
    let plan_id = required("plan_id", body.plan_id.as_ref())?;
    let organization_guid = required("organization_guid", body.organization_guid.as_ref())?;
    let space_guid = required("space_guid", body.space_guid.as_ref())?;
    let context = object_or_absent("context", body.context)?;
    let parameters = object_or_absent("parameters", body.parameters)?;
    check_platform(identity.as_deref(), context.as_ref())?;

    let catalog = Catalog::load(&state.store).await?;
    let class = catalog.class(&service_id).ok_or_else(|| {
        OsbError::BadRequest(format!("service_id {service_id} is not in the catalog"))
    })?;
    if plan_id != class.plan_id {
        return Err(OsbError::BadRequest(format!(
            "plan_id {plan_id} is not a plan of service {service_id} (its plan is {})",
            class.plan_id
        )));
    }
    let namespace = target_namespace(path.namespace.as_deref(), context.as_ref())?;
    let mapping: Option<ApplicationMapping> = state
        .store
        .get(Some(&namespace), &class.application)
        .await?;
    if !mapping.is_some_and(|m| m.enables(&class.id)) {
        return Err(OsbError::BadRequest(format!(
            "service {} of Application {} is not enabled in namespace {namespace}: create an ApplicationMapping {namespace}/{} that includes it",
            class.name, class.application, class.application
        )));
    }
    let maintenance_info = check_maintenance_info(body.maintenance_info.as_ref())?;
    if let Some(parameters) = &parameters {
        check_parameters(parameters).map_err(OsbError::BadRequest)?;
    }

    let accepted = state
        .provisioner
        .provision(
            ProvisionRequest {
                instance_id: path.instance_id.clone(),
                service_id,
                plan_id,
                namespace,
                application: class.application.clone(),
                organization_guid: Some(organization_guid),
                space_guid: Some(space_guid),
                context,
                parameters,
                maintenance_info,
            },
            completion,
        )
        .await?;
    answer(
        &state,
        &path.instance_id,
        accepted,
        completion,
        StatusCode::CREATED,
        "provisioning",
    )
    .await
}
