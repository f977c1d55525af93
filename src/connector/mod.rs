//! Kyma's Connector Service API (v1) on the events listener: an Application's
//! external system trades a TokenRequest's one-time token for a client
//! certificate signed by meshbroker's CA, then renews or revokes it with that
//! certificate. The events listener admits the certificate as the
//! Application's credential (see `auth`).

mod error;
mod management;
mod routes;
mod signing;
mod tokens;
mod urls;

pub use routes::routes;
