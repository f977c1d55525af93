//! The Connector's routes on the events listener. A method a route does not
//! take is answered in Kyma's error shape too (405 with `Allow`).

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use super::error::ConnectorError;
use super::{management, signing, urls};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(urls::INFO, only("GET", get(signing::configuration)))
        .route(urls::CERTIFICATES, only("POST", post(signing::sign)))
        .route(urls::MANAGEMENT_INFO, only("GET", get(management::info)))
        .route(urls::RENEWALS, only("POST", post(management::renew)))
        .route(urls::REVOCATIONS, only("POST", post(management::revoke)))
}

fn only(allowed: &'static str, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(move |method: Method| async move {
        ConnectorError::MethodNotAllowed(method.to_string(), allowed)
    })
}
