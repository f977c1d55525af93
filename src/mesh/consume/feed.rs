//! A consumer that feeds a dispatcher: a Trigger's (filtered) or an HTTP
//! Subscription's.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::cursor::{self, RETRY};
use crate::mesh::dispatch::{Dispatcher, Settled};
use crate::mesh::filter::{Filter, passes};
use crate::mesh::log::{EventLog, Log, Start};
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// Events read from the log at a time.
const READ_BATCH: usize = 256;

/// What a consumer reads and where it hands events.
pub struct Feed {
    pub event_log: Arc<EventLog>,
    /// `trigger/<uid>` or `subscription/<uid>`: its cursor's name.
    pub consumer: String,
    pub log: Arc<Log>,
    pub start: Start,
    /// A Trigger's filter (swapped when the Trigger's spec changes); None
    /// takes everything.
    pub filter: Option<Arc<ArcSwap<Filter>>>,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
}

/// Reads the log from the consumer's cursor into its dispatcher until the
/// task is stopped or the broker shuts down.
pub async fn feed(feed: Feed) {
    let Feed {
        event_log,
        consumer,
        log,
        start,
        filter,
        dispatcher,
        metrics,
        shutdown,
    } = feed;
    let Some(cursor) = cursor::open(&event_log, &consumer, &log, start, &shutdown).await else {
        return;
    };
    let mut end = log.watch_end();
    let mut next = cursor.read_to();
    let label = dispatcher.target().label.clone();
    loop {
        tokio::select! {
            changed = end.wait_for(|end| *end > next) => if changed.is_err() { return },
            () = shutdown.clone().wait() => return,
        }
        let batch = match log.read(next, READ_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%consumer, %error, "cannot read the log; trying again");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if batch.is_empty() {
            // Only a log trimmed under the cursor gets here (dropped and made
            // again): go on from what it holds.
            tracing::warn!(%consumer, from = next, to = log.end(), "events under the cursor are gone; skipping to the log's end");
            next = log.end();
            cursor.passed(next);
            continue;
        }
        for record in batch {
            let wanted = filter
                .as_ref()
                .is_none_or(|f| passes(&f.load(), &label, &record.event.event, &metrics));
            if wanted {
                let reservation = tokio::select! {
                    reservation = dispatcher.reserve() => reservation,
                    () = shutdown.clone().wait() => return,
                };
                let Some(reservation) = reservation else {
                    tracing::error!(%consumer, "the dispatcher refused an event; reading stops");
                    return;
                };
                cursor.take(record.seq);
                reservation.send_settled(
                    record.event.clone(),
                    Some(Settled {
                        by: cursor.clone(),
                        seq: record.seq,
                    }),
                );
            }
            next = record.seq + 1;
            cursor.passed(next);
            if shutdown.is_down() {
                return;
            }
        }
    }
}
