//! The resource API's route table.

use axum::Router;
use axum::routing::get;

use super::discovery;
use super::handlers::{create, delete, get as get_one, list, patch, replace};
use super::tail::tail;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    let collection = || get(list).post(create);
    let item = || get(get_one).put(replace).patch(patch).delete(delete);
    Router::new()
        .route("/api/v1/{plural}", collection())
        .route("/api/v1/{plural}/{name}", item())
        .route("/apis/{group}/{version}/{plural}", collection())
        .route("/apis/{group}/{version}/{plural}/{name}", item())
        .route(
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}",
            collection(),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
            item(),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}/tail",
            get(tail),
        )
        .merge(discovery::routes())
}
