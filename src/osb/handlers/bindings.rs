//! `PUT` and `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
//! A bind is 201 with the credentials when it created the binding, 200 when it was
//! already there (409 when there with other parameters or `bind_resource`);
//! binding an events-only class is a 400 that says so. An unbind is 200 `{}`,
//! 410 when there is no such binding, 400 when its ids are not the instance's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::replies;
use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::headers::OriginatingIdentity;
use crate::osb::paths::{BindingPath, OsbPath};
use crate::osb::requests::{BindBody, NamedIds, OsbJson, QueryParams};
use crate::provisioner::Bound;

pub async fn bind(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<BindingPath>,
    identity: Option<Extension<OriginatingIdentity>>,
    OsbJson(body): OsbJson<BindBody>,
) -> Result<Response, OsbError> {
    let binding = broker
        .bind(&path, body.details(identity.as_deref())?)
        .await?;
    let status = match binding.bound {
        Bound::Created => StatusCode::CREATED,
        Bound::AlreadyThere => StatusCode::OK,
    };
    Ok((status, Json(json!({ "credentials": binding.credentials }))).into_response())
}

pub async fn unbind(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<BindingPath>,
    query: QueryParams,
) -> Result<Response, OsbError> {
    // OSB requires both ids; they must be the instance's.
    let named = NamedIds::from(query.service_plan()?);
    broker.unbind(&path, &named).await?;
    Ok(replies::empty(StatusCode::OK))
}
