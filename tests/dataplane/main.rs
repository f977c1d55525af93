//! Black-box dataplane tests: the real binary, real sockets, recording sinks.
//! Events go Application ingress → Channel → Subscription → Broker → Trigger →
//! subscriber, and every rule of the ingress, filters, delivery and isolation is
//! checked from outside.

#[path = "../common/mod.rs"]
mod common;

const BACKEND: common::Backend = common::Backend::Embedded;

mod conditions;
mod connector;
mod delivery;
mod durable;
mod fidelity;
mod filter_limits;
mod ingress;
mod isolation;
mod jetstream;
mod metrics;
mod replies;
mod revocation;
mod routing;
mod tail;
mod transport;
