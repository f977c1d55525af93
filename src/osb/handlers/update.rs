//! `PATCH /v2/service_instances/{instance_id}`: 200 when the parameters are
//! unchanged or the update finished within the synchronous wait, 202 with the
//! operation when the platform follows it; 422 when asked to change the plan (it
//! is not updateable) or the namespace.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::replies;
use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::headers::OriginatingIdentity;
use crate::osb::paths::{InstancePath, OsbPath};
use crate::osb::requests::{AcceptsIncomplete, OsbJson, UpdateBody};

pub async fn update(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<InstancePath>,
    AcceptsIncomplete(asynchronous): AcceptsIncomplete,
    identity: Option<Extension<OriginatingIdentity>>,
    OsbJson(body): OsbJson<UpdateBody>,
) -> Result<Response, OsbError> {
    let details = body.details(identity.as_deref())?;
    let outcome = broker.update(&path, details, asynchronous).await?;
    Ok(replies::outcome(outcome, StatusCode::OK))
}
