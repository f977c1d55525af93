//! How a durable consumer hears about its deliveries: each retry scheduled
//! (so the schedule survives a restart) and the end of each delivery (so its
//! cursor can move past the event).

use std::sync::Arc;

use super::retry::RetryDue;

/// Told how a delivery goes, so a durable consumer can keep its retry
/// schedule and move its cursor past the event once it is over.
pub trait Settle: Send + Sync {
    /// The delivery is over (delivered, dead-lettered or given up).
    fn settle(&self, seq: u64);
    /// An attempt failed; the next one is due as `due` says.
    fn retrying(&self, seq: u64, due: RetryDue);
}

/// Whom to tell, about which event of theirs, and where its retry schedule
/// stood before a restart.
pub struct Settled {
    pub by: Arc<dyn Settle>,
    pub seq: u64,
    pub resume: Option<RetryDue>,
}
