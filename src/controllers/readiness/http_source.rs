//! HTTPSources: their ingress URL on the events listener, and Ready.

use std::sync::Arc;

use async_trait::async_trait;

use super::writer::StatusWriter;
use crate::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::resources::{ConditionStatus, Conditions, HttpSource};
use crate::store::StoreError;

pub(super) struct HttpSourceStatusController(pub Arc<StatusWriter>);

#[async_trait]
impl Reconciler for HttpSourceStatusController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Requeue, StoreError> {
        let Some(source) = self
            .0
            .store
            .get::<HttpSource>(key.namespace.as_deref(), &key.name)
            .await?
        else {
            return Ok(Requeue::Done);
        };
        let mut status = source.status.clone().unwrap_or_default();
        status.url = Some(self.0.events_url(&format!("{}/events", source.spec.source)));
        status.set_condition("Ready", ConditionStatus::True, "Served", "");
        self.0.write(source, status).await?;
        Ok(Requeue::Done)
    }
}
