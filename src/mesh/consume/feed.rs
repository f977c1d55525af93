//! A consumer that feeds a dispatcher: a Trigger's (filtered) or an HTTP
//! Subscription's.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::cursor::Reader;
use crate::mesh::dispatch::{Dispatcher, Settled};
use crate::mesh::filter::{Filter, passes};
use crate::mesh::log::{EventLog, Log, Owner, Start};
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// Events read from the log at a time.
const READ_BATCH: usize = 256;

/// What a consumer reads and where it hands events.
pub struct Feed {
    pub event_log: Arc<EventLog>,
    /// `trigger/<uid>` or `subscription/<uid>`: its cursor's name.
    pub consumer: String,
    pub owner: Owner,
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
        owner,
        log,
        start,
        filter,
        dispatcher,
        metrics,
        shutdown,
    } = feed;
    let opened = Reader::open(
        &event_log,
        consumer,
        owner,
        log,
        start,
        READ_BATCH,
        shutdown.clone(),
    );
    let Some(mut reader) = opened.await else {
        return;
    };
    let label = dispatcher.target().label.clone();
    while let Some(batch) = reader.next_batch().await {
        for record in batch {
            let wanted = filter
                .as_ref()
                .is_none_or(|f| passes(&f.load(), &label, &record.event.event, &metrics));
            if wanted {
                // Waiting (and so watching for shutdown) only when the queue
                // is full: the usual case takes a place at once.
                let reservation = match dispatcher.try_reserve_place() {
                    Some(reservation) => Some(reservation),
                    None => tokio::select! {
                        reservation = dispatcher.reserve() => reservation,
                        () = shutdown.clone().wait() => return,
                    },
                };
                let Some(reservation) = reservation else {
                    tracing::error!(consumer = %reader.consumer(), "the dispatcher refused an event; reading stops");
                    return;
                };
                reader.cursor.take(record.seq);
                reservation.send_settled(
                    record.event.clone(),
                    Some(Settled {
                        by: reader.cursor.clone(),
                        seq: record.seq,
                        resume: reader.cursor.resume(record.seq),
                    }),
                );
            }
            reader.passed(record.seq + 1);
            if reader.is_down() {
                return;
            }
        }
    }
}
