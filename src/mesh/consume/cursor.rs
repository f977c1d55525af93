//! Opening a consumer's cursor (retried while the log's file refuses) and
//! settling deliveries against it.

use std::sync::Arc;
use std::time::Duration;

use crate::mesh::dispatch::Settle;
use crate::mesh::log::{Cursor, EventLog, Log, Start};
use crate::shutdown::Shutdown;

/// How long to wait before trying the file again after it refused.
pub const RETRY: Duration = Duration::from_secs(1);

impl Settle for Cursor {
    fn settle(&self, seq: u64) {
        Cursor::settle(self, seq);
    }
}

/// The consumer's cursor; None when shutting down first.
pub async fn open(
    event_log: &EventLog,
    consumer: &str,
    log: &Arc<Log>,
    start: Start,
    shutdown: &Shutdown,
) -> Option<Arc<Cursor>> {
    loop {
        match event_log.cursor(consumer, log, start).await {
            Ok(cursor) => return Some(cursor),
            Err(error) => {
                tracing::error!(%consumer, %error, "cannot open the consumer's cursor; trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
        if shutdown.is_down() {
            return None;
        }
    }
}
