//! The leader's watch on the instance records: every operation recorded as
//! running — by this replica, by a follower that took the OSB request, or
//! left running by a process that stopped — gets a runner here. The watch's
//! first listing is what resumes interrupted operations after a start.

use std::sync::Arc;

use async_trait::async_trait;

use super::context::Context;
use super::runner;
use crate::controllers::{ObjectKey, Reconciler, Requeue, Source, spawn_controller};
use crate::resources::{ServiceInstance, kind_of};
use crate::shutdown::Shutdown;
use crate::store::StoreError;

struct Operations(Arc<Context>);

#[async_trait]
impl Reconciler for Operations {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let instance: Option<ServiceInstance> = self.0.store().get(None, &key.name).await?;
        if instance.is_some_and(|i| i.running_operation().is_some()) {
            runner::spawn(self.0.clone(), key.name.clone());
        }
        Ok(Requeue::Done)
    }
}

/// Watches the records for the rest of `term`.
pub fn watch(context: Arc<Context>, term: Shutdown) {
    let store = context.store().raw().clone();
    spawn_controller(
        "operations",
        store,
        vec![Source::primary(kind_of::<ServiceInstance>())],
        Arc::new(Operations(context)),
        term,
    );
}
