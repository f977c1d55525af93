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
mod routes;
mod schema;

pub use error::IngressError;
pub use routes::{console_routes, routes};
