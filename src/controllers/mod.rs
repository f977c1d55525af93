//! Controllers in the kube-rs mould: each watches some kinds, maps changes to keys,
//! and reconciles one key at a time toward the desired state, idempotently, with
//! failures retried by backoff. They play Kyma's Application Operator (Application →
//! HTTPSource and Channel), Knative's broker injection (labelled namespace → Broker
//! `default`) and, for the embedded dataplane, Knative's status writers (addresses,
//! readiness); Kyma's Connector's first step (a TokenRequest's one-time token); the
//! EventTypes of provisioned event types;
//! and the leader's watch that runs recorded operations.

mod applications;
mod event_types;
mod injection;
pub mod operations;
mod readiness;
mod resolve;
mod runtime;
mod settings;
mod start;
mod token_requests;

pub use resolve::resolve_destination;
pub use runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
pub use settings::MeshSettings;
pub use start::start;
pub use token_requests::INFO_PATH;
