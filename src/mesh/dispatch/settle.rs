//! How a durable consumer hears about its deliveries: each retry scheduled
//! (so the schedule survives a restart) and the end of each delivery (so its
//! cursor can move past the event). A consumer whose log redelivers events
//! itself (JetStream) takes each retry over: the attempt ends there and the
//! event comes back when it is due, to whichever replica is free.

use std::sync::Arc;

use super::retry::RetryDue;

/// Told how a delivery goes, so a durable consumer can keep its retry
/// schedule and move its cursor past the event once it is over.
pub trait Settle: Send + Sync {
    /// The delivery is over (delivered, dead-lettered or given up).
    fn settle(&self, seq: u64);
    /// An attempt failed; the next one is due as `due` says. Answers who
    /// makes that attempt.
    fn retrying(&self, seq: u64, due: RetryDue) -> RetryBy;
}

/// Who makes a delivery's next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryBy {
    /// The dispatcher's worker, after waiting here.
    Dispatcher,
    /// The log, by delivering the event again when it is due; the delivery
    /// ends here without settling.
    Log,
}

/// Whom to tell, about which event of theirs, and where its retry schedule
/// stood before a restart.
pub struct Settled {
    pub by: Arc<dyn Settle>,
    pub seq: u64,
    pub resume: Option<RetryDue>,
}
