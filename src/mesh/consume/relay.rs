//! A Subscription from a Channel to one of our Brokers: the Channel's events
//! appended to the Broker's log, a batch at a time, the cursor moving only once
//! the Broker's log holds them. A full Broker (its namespace's disk budget)
//! makes the relay wait and try again: the namespace lags behind the Channel,
//! and no other namespace notices.

use std::sync::Arc;
use std::time::Duration;

use super::cursor::{self, RETRY};
use crate::mesh::event::PreparedEvent;
use crate::mesh::log::{AppendError, EventLog, Log, Start};
use crate::shutdown::Shutdown;

const RELAY_BATCH: usize = 256;
const FULL_FIRST_WAIT: Duration = Duration::from_millis(20);
const FULL_LONGEST_WAIT: Duration = Duration::from_secs(1);

pub async fn relay(
    event_log: Arc<EventLog>,
    consumer: String,
    from: Arc<Log>,
    to: Arc<Log>,
    shutdown: Shutdown,
) {
    let Some(cursor) = cursor::open(&event_log, &consumer, &from, Start::End, &shutdown).await
    else {
        return;
    };
    let mut end = from.watch_end();
    let mut next = cursor.read_to();
    let mut wait = FULL_FIRST_WAIT;
    loop {
        tokio::select! {
            changed = end.wait_for(|end| *end > next) => if changed.is_err() { return },
            () = shutdown.clone().wait() => return,
        }
        let batch = match from.read(next, RELAY_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%consumer, %error, "cannot read the Channel's log; trying again");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|r| r.seq) else {
            tracing::warn!(%consumer, from = next, "events under the cursor are gone; skipping to the log's end");
            next = from.end();
            cursor.passed(next);
            continue;
        };
        let events: Vec<Arc<PreparedEvent>> = batch.into_iter().map(|r| r.event).collect();
        match to.append(&events).await {
            Ok(()) => {
                next = last + 1;
                cursor.passed(next);
                wait = FULL_FIRST_WAIT;
            }
            Err(AppendError::Full(_)) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(FULL_LONGEST_WAIT);
            }
            Err(AppendError::Failed(error)) => {
                tracing::error!(%consumer, %error, "cannot append to the Broker's log; trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
