//! HTTPSources: their Application's ingress URL on the events listener, and
//! Ready — while that Application exists and, outside the integration
//! namespace, is mapped into the source's namespace (looked at again when an
//! Application or a mapping comes or goes). A namespace token learns of no
//! Application it is not given: an unmapped one reads as one that is not there.

use std::sync::Arc;

use async_trait::async_trait;

use super::writer::StatusWriter;
use crate::controllers::runtime::{ObjectKey, Reconciler, Requeue};
use crate::resources::{Application, ApplicationMapping, ConditionStatus, Conditions, HttpSource};
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
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let integration = namespace == self.0.settings.integration_namespace;
        let mapped = integration
            || self
                .0
                .store
                .get::<ApplicationMapping>(Some(namespace), application)
                .await?
                .is_some();
        let served = mapped
            && self
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
                if integration {
                    format!("no Application {application:?}: nothing takes events in for it")
                } else {
                    format!(
                        "no Application {application:?} is mapped into namespace {namespace:?} (an administrator maps one with an ApplicationMapping)"
                    )
                },
            );
        }
        self.0.write(source, status).await?;
        Ok(Requeue::Done)
    }
}
