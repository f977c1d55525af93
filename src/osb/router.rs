//! The OSB route table, served at `/v2` and again under `/{namespace}/v2`.

use axum::Router;
use axum::routing::{get, put};

use super::handlers::{
    bind, catalog, deprovision, fetch, last_operation, provision, unbind, update,
};
use super::headers::osb_headers;
use crate::server::AppState;

pub fn routes(state: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/v2", "/{namespace}/v2"] {
        router = router
            .route(&format!("{prefix}/catalog"), get(catalog))
            .route(
                &format!("{prefix}/service_instances/{{instance_id}}"),
                put(provision).patch(update).delete(deprovision).get(fetch),
            )
            .route(
                &format!("{prefix}/service_instances/{{instance_id}}/last_operation"),
                get(last_operation),
            )
            .route(
                &format!(
                    "{prefix}/service_instances/{{instance_id}}/service_bindings/{{binding_id}}"
                ),
                put(bind).delete(unbind),
            );
    }
    router.route_layer(axum::middleware::from_fn_with_state(state, osb_headers))
}
