//! One handler per OSB endpoint, each in the same order: decode the path, the
//! query, the headers and the body into the facade's details → call the
//! `ServiceBroker` → encode its answer with the status code the spec gives it.

mod bindings;
mod catalog;
mod deprovision;
mod fetch;
mod last_operation;
mod provision;
mod replies;
mod update;

pub use bindings::{bind, unbind};
pub use catalog::catalog;
pub use deprovision::deprovision;
pub use fetch::fetch;
pub use last_operation::last_operation;
pub use provision::provision;
pub use update::update;
