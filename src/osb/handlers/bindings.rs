//! `PUT` and `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
//! Only classes whose service has an `API` entry are bindable; a binding's
//! credentials are that entry's gateway (and target) URL. Binding an events-only
//! class is a 400 that says so.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{OsbPath, empty};
use crate::osb::OsbError;
use crate::osb::catalog::Catalog;
use crate::osb::types::{BindBody, QueryParams, object_or_absent, read_json, required};
use crate::provisioner::Bound;
use crate::state::AppState;

pub async fn bind(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    body: Body,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let binding_id = path.binding_id.clone().unwrap_or_default();
    let body: BindBody = read_json(body, state.config.max_body_bytes).await?;
    let service_id = required("service_id", body.service_id.as_ref())?;
    let plan_id = required("plan_id", body.plan_id.as_ref())?;
    let parameters = object_or_absent("parameters", body.parameters)?;
    let catalog = Catalog::load(&state.store).await?;
    let class = catalog.class(&service_id).ok_or_else(|| {
        OsbError::BadRequest(format!("service_id {service_id} is not in the catalog"))
    })?;
    if plan_id != class.plan_id {
        return Err(OsbError::BadRequest(format!(
            "plan_id {plan_id} is not a plan of service {service_id}"
        )));
    }
    let Some(api) = class.service.api_entry() else {
        return Err(OsbError::BadRequest(format!(
            "service {} is not bindable: it offers events only (bindable: false); provision it without binding",
            class.name
        )));
    };
    let instance = path
        .live_instance(&state)
        .await?
        .ok_or_else(|| path.no_such_instance())?;
    if instance.spec.service_id != service_id {
        return Err(OsbError::BadRequest(format!(
            "instance {} is of service {}, not {service_id}",
            path.instance_id, instance.spec.service_id
        )));
    }
    let bound = state
        .provisioner
        .bind(&path.instance_id, &binding_id, parameters)
        .await?;
    let mut credentials = Map::new();
    for (key, value) in [
        ("gatewayUrl", &api.gateway_url),
        ("targetUrl", &api.target_url),
    ] {
        if let Some(url) = value {
            credentials.insert(key.into(), Value::String(url.clone()));
        }
    }
    let status = match bound {
        Bound::Created => StatusCode::CREATED,
        Bound::AlreadyThere => StatusCode::OK,
    };
    Ok((status, Json(json!({ "credentials": credentials }))).into_response())
}

pub async fn unbind(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
) -> Result<Response, OsbError> {
    let path = OsbPath::from(params)?;
    let query = QueryParams::of(&uri)?;
    required("service_id", query.get("service_id"))?;
    required("plan_id", query.get("plan_id"))?;
    let binding_id = path.binding_id.clone().unwrap_or_default();
    path.live_instance(&state).await?;
    state
        .provisioner
        .unbind(&path.instance_id, &binding_id)
        .await?;
    Ok(empty(StatusCode::OK))
}
