//! How the provisioner is configured (from the command line, by `server`).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ProvisionerSettings {
    pub integration_namespace: String,
    /// How long an operation keeps retrying after it (re)starts before it fails.
    pub operation_timeout: Duration,
    /// How long a deprovisioned instance's record is kept as a tombstone.
    pub deprovisioned_retention: Duration,
    /// Who reports Channels, Brokers and Subscriptions Ready ("meshbroker" or
    /// "Knative"): named in the descriptions of operations waiting for them.
    pub mesh_served_by: &'static str,
}
