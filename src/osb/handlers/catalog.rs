//! `GET /v2/catalog` and `GET /{namespace}/v2/catalog`: 200 with the catalog.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::osb::OsbError;
use crate::osb::broker::ServiceBroker;
use crate::osb::paths::{CatalogPath, OsbPath};

pub async fn catalog(
    State(broker): State<ServiceBroker>,
    OsbPath(path): OsbPath<CatalogPath>,
) -> Result<Json<Value>, OsbError> {
    Ok(Json(broker.catalog(path.namespace.as_deref()).await?))
}
