//! The Open Service Broker API v2.17: `/v2/...` and the same under
//! `/{namespace}/v2/...`. Headers and auth are middleware; each handler decodes
//! the request, calls the `ServiceBroker` facade (which makes every check against
//! the catalog, the mappings and the instance records, and calls the
//! provisioner) and encodes its answer.

mod broker;
mod catalog;
mod details;
mod error;
mod handlers;
mod headers;
mod namespace;
mod paths;
mod plan;
mod requests;
mod router;

pub use error::OsbError;
pub use router::routes;
