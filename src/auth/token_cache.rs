//! The AccessTokens in memory: digest → scope (namespace, and the Application for
//! an Application's credential).

use std::sync::Arc;

use super::store_index::StoreIndex;
use crate::resources::{AccessToken, kind_of};
use crate::store::Store;

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    pub namespace: String,
    pub application: Option<String>,
    /// The AccessToken's resourceVersion: no one may change an AccessToken
    /// (a PUT or PATCH is refused; registering its Application again
    /// replaces its token, and so issues it anew), so when it was issued.
    pub issued_at: Option<u64>,
}

pub type NamespaceTokens = StoreIndex<TokenScope>;

pub fn follow_tokens(store: Arc<dyn Store>) -> NamespaceTokens {
    StoreIndex::follow(store, kind_of::<AccessToken>(), entry)
}

fn entry(object: &kube::core::DynamicObject) -> Option<(String, TokenScope)> {
    let digest = object.data.get("status")?.get("tokenSha256")?.as_str()?;
    if digest.is_empty() {
        return None;
    }
    let application = object
        .data
        .get("spec")
        .and_then(|s| s.get("application"))
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let issued_at = object
        .metadata
        .resource_version
        .as_deref()
        .and_then(|version| version.parse().ok());
    Some((
        digest.to_string(),
        TokenScope {
            namespace,
            application,
            issued_at,
        },
    ))
}
