//! The events listener's HTTP handlers, one per hop a sender can reach:
//! Applications (`/{application}/events`, `/v2/events`, legacy `/v1/events`),
//! Brokers (`/{namespace}/{broker}`) and Channels (`/channels/{namespace}/{name}`).
//! Each validates, authorises and hands the events to the router; none knows
//! about Triggers.

mod application;
mod broker;
mod channel;
mod error;
mod request;
mod schema;

pub use error::IngressError;

use axum::Router;
use axum::routing::any;

use crate::server::AppState;

/// Parameters named as in openapi/events.yaml: the templates are the `route` label
/// of `meshbroker_http_requests_total`, so dashboards and the document agree.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{application}/events", any(application::cloudevents))
        .route("/{application}/v2/events", any(application::cloudevents))
        .route("/{application}/v1/events", any(application::legacy))
        .route("/channels/{namespace}/{channel}", any(channel::receive))
        .route("/{namespace}/{broker}", any(broker::receive))
}
