//! What a store operation can fail with; the resource API maps it to a Kubernetes
//! `Status`, everything else to its own errors.

use crate::resources::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: String, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: String, name: String },
    #[error(
        "{kind} {name:?} was changed since it was read (resourceVersion {given} is stale); read it again and retry"
    )]
    Conflict {
        kind: String,
        name: String,
        given: String,
    },
    #[error("{0}")]
    Invalid(Invalid),
    #[error("namespace {0:?} not found")]
    NamespaceNotFound(String),
    #[error("resourceVersion {0} is too old to watch from; list again")]
    Expired(String),
    /// A revision the store has not reached (a client confused, or reading
    /// another store's): as a Kubernetes API server says once it waited.
    #[error("Too large resource version: {asked}, current: {current}")]
    TooLarge { asked: u64, current: u64 },
    /// The Kubernetes API server refused meshbroker itself (its RBAC rights).
    #[error(
        "the Kubernetes API server forbids meshbroker this (grant it in meshbroker's ClusterRole): {0}"
    )]
    NotPermitted(String),
    #[error("store failure: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::AlreadyExists { .. })
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::internal(error)
    }
}
