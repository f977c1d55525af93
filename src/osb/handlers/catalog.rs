//! `GET /v2/catalog` and `GET /{namespace}/v2/catalog`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;

use crate::osb::OsbError;
use crate::osb::catalog::Catalog;
use crate::resources::ApplicationMapping;
use crate::state::AppState;
use crate::store::LabelSelector;

pub async fn catalog(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<impl IntoResponse, OsbError> {
    let catalog = Catalog::load(&state.store).await?;
    let body = match params.get("namespace") {
        Some(namespace) => {
            let mappings: Vec<ApplicationMapping> = state
                .store
                .list(Some(namespace), &LabelSelector::everything())
                .await?;
            catalog.to_osb(Some(&mappings))
        }
        None => catalog.to_osb(None),
    };
    Ok(Json(body))
}
