//! Forgetting deprovisioned instances. A successful deprovision leaves the record as
//! a tombstone for the retention period (`--deprovisioned-retention`), so a platform
//! polling the deprovision by its operation id still learns it succeeded; after that
//! the record is deleted. Without this, tombstones were kept forever.
//!
//! Nothing depends on a tombstone beyond the retention: a DELETE of an unknown
//! instance is a 410 like that of a tombstone, a PUT creates a new record, and a poll
//! naming a deprovision's operation of an unknown instance is a 410 (see
//! `is_deprovision_of`).

use std::time::Duration;

use super::service::Provisioner;
use crate::resources::{OperationKind, OperationState, ServiceInstance};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError};

/// Bounds on how often tombstones are looked for: half the retention, so one lives
/// at most one and a half retention periods, but at most hourly and at least not
/// in a busy loop when the retention is tiny.
const SHORTEST_SWEEP: Duration = Duration::from_millis(100);
const LONGEST_SWEEP: Duration = Duration::from_secs(60 * 60);

impl Provisioner {
    /// Deletes the tombstones whose deprovision ended longer ago than the
    /// retention; returns how many went.
    pub async fn forget_deprovisioned(&self) -> Result<usize, StoreError> {
        let store = self.context().store();
        let retention = self.context().settings().deprovisioned_retention;
        let instances: Vec<ServiceInstance> =
            store.list(None, &LabelSelector::everything()).await?;
        let mut forgotten = 0;
        for tombstone in instances.iter().filter(|i| !i.is_live()) {
            let remembered = tombstone.last_operation().is_some_and(|op| {
                op.kind == OperationKind::Deprovision
                    && op.state == OperationState::Succeeded
                    && op.ended_within(retention)
            });
            if remembered {
                continue;
            }
            // Conditional: a provision reusing the tombstone since the list wins.
            match store.delete_unchanged(tombstone).await {
                Ok(true) => forgotten += 1,
                Ok(false) | Err(StoreError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(forgotten)
    }

    /// Forgets expired tombstones until shutdown; a failed sweep is logged and
    /// tried again at the next one.
    pub async fn forget_deprovisioned_until(self, shutdown: Shutdown) {
        let period = (self.context().settings().deprovisioned_retention / 2)
            .clamp(SHORTEST_SWEEP, LONGEST_SWEEP);
        loop {
            match self.forget_deprovisioned().await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "deprovisioned instances forgotten"),
                Err(error) => {
                    tracing::warn!(%error, "cannot forget deprovisioned instances; trying again later")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = shutdown.clone().wait() => return,
            }
        }
    }
}
