//! The leader's watch on the instance records: every operation recorded as
//! running — by this replica, by a follower that took the OSB request, or
//! left running by a process that stopped — is handed to the provisioner to
//! run (it runs each record once at a time, so a repeat is harmless).

use std::sync::Arc;

use async_trait::async_trait;

use super::runtime::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use crate::provisioner::Provisioner;
use crate::resources::{ServiceInstance, kind_of};
use crate::shutdown::Shutdown;
use crate::store::{StoreError, TypedStore};

struct Operations {
    store: TypedStore,
    provisioner: Provisioner,
}

#[async_trait]
impl Reconciler for Operations {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let instance: Option<ServiceInstance> = self.store.get(None, &key.name).await?;
        if instance.is_some_and(|i| i.running_operation().is_some()) {
            self.provisioner.run(&key.name);
        }
        Ok(Requeue::Done)
    }
}

/// Watches the records for the rest of `term`.
pub fn watch(store: TypedStore, provisioner: Provisioner, term: Shutdown) {
    let raw = store.raw().clone();
    spawn_controller(
        "operations",
        raw,
        vec![Source::primary(kind_of::<ServiceInstance>())],
        Arc::new(Operations { store, provisioner }),
        term,
    );
}
