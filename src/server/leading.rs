//! What the leader runs — the controllers and the provisioner's operations —
//! for as long as it leads: the whole life of the process when it runs alone,
//! or, with `--leader-elect`, each term this replica holds the Lease.

use std::time::Duration;

use crate::controllers::{self, MeshSettings};
use crate::provisioner::Provisioner;
use crate::shutdown::Shutdown;
use crate::store::{StoreError, TypedStore};

/// How long a new term waits before trying again to start what failed.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct LeaderWork {
    pub store: TypedStore,
    pub mesh: MeshSettings,
    pub provisioner: Provisioner,
}

impl LeaderWork {
    /// Starts everything for `term`; an error is the store's, as it answered.
    pub async fn start(&self, term: Shutdown) -> Result<(), StoreError> {
        controllers::start(self.store.clone(), self.mesh.clone(), term.clone()).await?;
        let resumed = self.provisioner.lead(term.clone()).await?;
        controllers::operations::watch(self.store.clone(), self.provisioner.clone(), term);
        if resumed > 0 {
            tracing::info!(resumed, "resumed interrupted operations");
        }
        Ok(())
    }

    /// Starts everything for an elected term, trying again while the store
    /// refuses and the term lasts.
    pub async fn start_term(self, term: Shutdown) {
        while let Err(error) = self.start(term.clone()).await {
            tracing::warn!(%error, "cannot start the leader's work yet; trying again");
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = term.clone().wait() => return,
            }
        }
    }
}
