//! The console's routes on the control listener.

use axum::Router;
use axum::routing::{get, post};

use super::{api, assets, filter_test, watch};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(assets::to_index))
        .route("/console/", get(assets::index))
        .route("/console/console.js", get(assets::script))
        .route("/console/console.css", get(assets::style))
        .route("/console/api/whoami", get(api::whoami))
        .route("/console/api/cesql", post(api::check_cesql))
        .route("/console/api/watch", get(watch::watch))
        .route("/console/api/rates", get(api::rates))
        .route("/console/api/filter-test", post(filter_test::filter_test))
}
