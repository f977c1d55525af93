//! The OSB route table, served at `/v2` and again under `/{namespace}/v2`.
//!
//! Every request under those prefixes passes the header checks first — credentials
//! (401), then the API version (412) — whatever it asks for: a method a path does
//! not serve (405) and a path that does not exist (404) are answered by OSB's own
//! handlers behind the checks, never by the listener's fallbacks before them.

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{MethodRouter, any, get, put};

use super::OsbError;
use super::handlers::{
    bind, catalog, deprovision, fetch, last_operation, provision, unbind, update,
};
use super::headers::osb_headers;
use crate::state::AppState;

pub fn routes(state: AppState) -> Router<AppState> {
    // Other methods answer 405 from here, so the checks below cover them too
    // (axum's own 405 would be answered before any middleware).
    let only = |methods: MethodRouter<AppState>| methods.fallback(method_not_allowed);
    let mut router = Router::new();
    for prefix in ["/v2", "/{namespace}/v2"] {
        router = router
            .route(&format!("{prefix}/catalog"), only(get(catalog)))
            .route(
                &format!("{prefix}/service_instances/{{instance_id}}"),
                only(put(provision).patch(update).delete(deprovision).get(fetch)),
            )
            .route(
                &format!("{prefix}/service_instances/{{instance_id}}/last_operation"),
                only(get(last_operation)),
            )
            .route(
                &format!(
                    "{prefix}/service_instances/{{instance_id}}/service_bindings/{{binding_id}}"
                ),
                only(put(bind).delete(unbind)),
            )
            .route(&format!("{prefix}/{{*rest}}"), any(not_found));
    }
    // `layer`, not `route_layer`: the checks wrap the 405 fallbacks as well.
    router.layer(axum::middleware::from_fn_with_state(state, osb_headers))
}

async fn not_found(uri: Uri) -> OsbError {
    OsbError::NotFound(format!("the OSB API serves nothing at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> OsbError {
    OsbError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
