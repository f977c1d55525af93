//! The revoked client certificates in memory (fingerprint → Application, if
//! named), so every request with a certificate is checked without reading the
//! store.

use std::sync::Arc;

use super::store_index::StoreIndex;
use crate::resources::{CertificateRevocation, kind_of, normalized_fingerprint};
use crate::store::Store;

pub type Revocations = StoreIndex<()>;

pub fn follow_revocations(store: Arc<dyn Store>) -> Revocations {
    StoreIndex::follow(store, kind_of::<CertificateRevocation>(), entry)
}

fn entry(object: &kube::core::DynamicObject) -> Option<(String, ())> {
    let written = object.data.get("spec")?.get("sha256")?.as_str()?;
    Some((normalized_fingerprint(written)?, ()))
}
