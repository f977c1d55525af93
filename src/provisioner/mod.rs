//! Provisioning, updating and deprovisioning Event ServiceClass instances as
//! durable operations: the request is recorded before it is acknowledged, the steps
//! are idempotent and retried with backoff, and unfinished operations resume when
//! the process starts again. The provisioner writes resources only; the mesh's
//! controllers and dataplane follow them.
//!
//! How the files stack, each importing only files after it: `tombstones` (forgetting
//! deprovisioned records) → `service` (the requests, decided against the record) →
//! `runner` (runs an operation's plan) → `steps` (the steps and their tables) →
//! `shared_delivery` (the delivery options instances share) → `plan` (tables, numbering) → `job` (one operation on one instance) → `context`
//! (what all operations share) → `runners`, `settings`, `backoff`, `names`,
//! `requests`.

mod backoff;
mod context;
mod job;
mod names;
mod plan;
mod requests;
mod runner;
mod runners;
mod service;
mod settings;
mod shared_delivery;
mod steps;
mod tombstones;

pub use names::{
    instance_object_name, is_deprovision_of, is_in_operation_id_form, subscription_name,
};
pub use requests::{
    Accepted, Bound, Completion, DeprovisionRequest, ProvisionError, ProvisionRequest,
    UpdateRequest,
};
pub use service::Provisioner;
pub use settings::ProvisionerSettings;
