//! `PUT /v2/service_instances/{instance_id}`: 201 when this request provisioned,
//! 200 when it was already there, 202 with the operation when the platform
//! follows it; 400 for bad or unknown input and for a namespace the Application
//! is not mapped into; 409 for the same id with other attributes; 422 for
//! AsyncRequired, MaintenanceInfoConflict and ConcurrencyError.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::replies;
use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::headers::OriginatingIdentity;
use crate::osb::paths::{InstancePath, OsbPath};
use crate::osb::requests::{AcceptsIncomplete, OsbJson, ProvisionBody};

pub async fn provision(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<InstancePath>,
    AcceptsIncomplete(asynchronous): AcceptsIncomplete,
    identity: Option<Extension<OriginatingIdentity>>,
    OsbJson(body): OsbJson<ProvisionBody>,
) -> Result<Response, OsbError> {
    let details = body.details(identity.as_deref())?;
    let outcome = broker.provision(&path, details, asynchronous).await?;
    Ok(replies::outcome(outcome, StatusCode::CREATED))
}
