//! Provisioning, updating and deprovisioning Event ServiceClass instances as
//! durable operations: the request is recorded before it is acknowledged, the steps
//! are idempotent and retried with backoff, and unfinished operations resume when
//! the process starts again. The provisioner writes resources only; the mesh's
//! controllers and dataplane follow them.

mod names;
mod requests;
mod runner;
mod service;
mod steps;
mod tombstones;

pub use names::{instance_object_name, is_deprovision_operation, subscription_name};
pub use requests::{
    Accepted, Bound, Completion, DeprovisionRequest, ProvisionError, ProvisionRequest,
    UpdateRequest,
};
pub use service::{Provisioner, ProvisionerSettings};
