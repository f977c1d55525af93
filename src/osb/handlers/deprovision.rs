//! `DELETE /v2/service_instances/{instance_id}?service_id&plan_id`: 200 when
//! unwound, 202 with the operation when the platform follows it; 410 when there
//! is no such instance; 422 while another operation runs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::replies;
use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::paths::{InstancePath, OsbPath};
use crate::osb::requests::QueryParams;

pub async fn deprovision(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<InstancePath>,
    query: QueryParams,
) -> Result<Response, OsbError> {
    let asynchronous = query.accepts_incomplete()?;
    let ids = query.service_plan()?;
    let outcome = broker.deprovision(&path, ids, asynchronous).await?;
    Ok(replies::outcome(outcome, StatusCode::OK))
}
