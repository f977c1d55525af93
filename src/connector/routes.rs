//! The Connector's routes on the events listener.

use axum::Router;
use axum::routing::{get, post};

use super::{management, signing, urls};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(urls::INFO, get(signing::configuration))
        .route(urls::CERTIFICATES, post(signing::sign))
        .route(urls::MANAGEMENT_INFO, get(management::info))
        .route(urls::RENEWALS, post(management::renew))
        .route(urls::REVOCATIONS, post(management::revoke))
}
