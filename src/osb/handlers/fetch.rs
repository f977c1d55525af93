//! `GET /v2/service_instances/{instance_id}`: 200 with the instance; 404 when it
//! does not exist or is still being provisioned; 422 ConcurrencyError while it is
//! being updated.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::paths::{InstancePath, OsbPath};
use crate::osb::plan::MAINTENANCE_VERSION;
use crate::osb::requests::QueryParams;

pub async fn fetch(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<InstancePath>,
    query: QueryParams,
) -> Result<Json<Value>, OsbError> {
    let instance = broker.fetch_instance(&path, &query.named_ids()?).await?;
    let spec = &instance.spec;
    Ok(Json(json!({
        "service_id": spec.service_id,
        "plan_id": spec.plan_id,
        "parameters": spec.parameters.clone().unwrap_or_else(|| json!({})),
        "maintenance_info": { "version": MAINTENANCE_VERSION },
        "metadata": {
            "labels": {},
            "attributes": { "namespace": spec.namespace, "application": spec.application },
        },
    })))
}
