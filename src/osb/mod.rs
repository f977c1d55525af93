//! The Open Service Broker API v2.17: `/v2/...` and the same under
//! `/{namespace}/v2/...`. Headers and auth are middleware; each handler decodes,
//! checks ids against the catalog, calls the provisioner and picks the status code.

mod catalog;
mod error;
mod handlers;
mod headers;
mod namespace;
mod router;
mod types;

pub use catalog::{MAINTENANCE_VERSION, PARAMETERS_SCHEMA};
pub use error::OsbError;
pub use router::routes;
