//! What the OSB layer asks of the provisioner, and what it answers.

use crate::store::StoreError;

/// A provision, checked against the catalog and the namespace's mapping
/// unless `unchecked`.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    pub namespace: String,
    pub application: String,
    pub organization_guid: Option<String>,
    pub space_guid: Option<String>,
    pub context: Option<serde_json::Value>,
    pub parameters: Option<serde_json::Value>,
    pub maintenance_info: Option<serde_json::Value>,
    /// Not checked against the catalog and mapping, as the instance stood
    /// (provisioned, or an operation running) when the request came: it is
    /// answered from the record only. Should it have to start an operation
    /// (the instance changed meanwhile), `ProvisionError::Unchecked` asks
    /// for the checks first.
    pub unchecked: bool,
}

#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: Option<String>,
    pub parameters: Option<serde_json::Value>,
    pub context: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct DeprovisionRequest {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
}

/// The outcome of a bind: whether it created the binding or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Created,
    AlreadyThere,
}

/// How the platform takes the answer to a provision, update or deprovision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// It follows the operation (`accepts_incomplete=true`): 202 with its id.
    Asynchronous,
    /// It needs the outcome in the answer, within `within` (`--sync-wait`). OSB
    /// says a 4xx changes nothing, so whether to run synchronously is decided
    /// before anything is written: never when `within` is zero, nor when the
    /// operation would first have to wait on something (`AsyncRequired`). An
    /// operation started this way carries its deadline and fails there, so the
    /// answer is always its outcome and nothing runs on behind the platform's back.
    Synchronous { within: std::time::Duration },
}

/// How a mutating request was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// An operation runs (newly started, or the same one already running).
    Started { operation: String, fresh: bool },
    /// Nothing to do: the instance is already in the requested state.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Concurrency(String),
    /// Only an asynchronous request could be served; nothing was changed.
    #[error("{0}")]
    AsyncRequired(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    /// An `unchecked` request would start an operation: check it first.
    #[error("the request must be checked against the catalog and mapping first")]
    Unchecked,
    #[error(transparent)]
    Store(#[from] StoreError),
}
