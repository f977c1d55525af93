//! HTTPSources: their Application's ingress URL on the events listener, and
//! Ready — while that Application exists (it is looked at again when one
//! comes or goes).

use std::sync::Arc;

use async_trait::async_trait;

use super::writer::StatusWriter;
use crate::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::resources::{Application, ConditionStatus, Conditions, HttpSource};
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
        let application = &source.spec.source;
        let served = self
            .0
            .store
            .get::<Application>(None, application)
            .await?
            .is_some();
        let mut status = source.status.clone().unwrap_or_default();
        if served {
            status.url = Some(self.0.events_url(&format!("{application}/events")));
            status.set_condition("Ready", ConditionStatus::True, "Served", "");
        } else {
            // The address would be an Application's that is not there: none.
            status.url = None;
            status.set_condition(
                "Ready",
                ConditionStatus::False,
                "ApplicationNotFound",
                format!("no Application {application:?}: nothing takes events in for it"),
            );
        }
        self.0.write(source, status).await?;
        Ok(Requeue::Done)
    }
}
