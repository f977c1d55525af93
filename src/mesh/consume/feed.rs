//! An HTTP Subscription's consumer: its Channel's log, unfiltered, into its
//! dispatcher; and how any consumer hands an event to a dispatcher.

use std::sync::Arc;

use super::cursor::Reader;
use crate::mesh::dispatch::{Dispatcher, Reservation, Settled};
use crate::mesh::log::{Cursor, EventLog, Log, Owner, Record, Start};
use crate::mesh::routing::OpeningGuard;
use crate::shutdown::Shutdown;

/// Events read from the log at a time.
pub const READ_BATCH: usize = 256;

/// What a consumer reads and where it hands events.
pub struct Feed {
    pub event_log: Arc<EventLog>,
    /// `subscription/<uid>`: its cursor's name.
    pub consumer: String,
    pub owner: Owner,
    pub log: Arc<Log>,
    pub dispatcher: Arc<Dispatcher>,
    pub shutdown: Shutdown,
}

/// Reads the log from the consumer's cursor into its dispatcher until the
/// task is stopped or the broker shuts down.
pub async fn feed(feed: Feed, mut opening: OpeningGuard) {
    let Feed {
        event_log,
        consumer,
        owner,
        log,
        dispatcher,
        shutdown,
    } = feed;
    let opened = Reader::open(
        &event_log,
        consumer,
        owner,
        log,
        Start::End,
        READ_BATCH,
        shutdown.clone(),
    );
    let Some(mut reader) = opened.await else {
        return;
    };
    opening.done();
    if !hand_waiting(&reader, &dispatcher, |_| true, &shutdown).await {
        return;
    }
    while let Some(batch) = reader.next_batch().await {
        for record in batch {
            if !hand_to(&dispatcher, &reader.cursor, &record, &shutdown).await {
                return;
            }
            reader.passed(record.seq + 1);
            if reader.is_down() {
                return;
            }
        }
    }
}

/// Hands the events the consumer waited to retry when it last stopped (its
/// position had passed them) to `dispatcher`, those it still `wants`; the
/// others' schedules go. False when shutting down or refused.
pub async fn hand_waiting(
    reader: &Reader,
    dispatcher: &Arc<Dispatcher>,
    wants: impl Fn(&Record) -> bool,
    shutdown: &Shutdown,
) -> bool {
    for record in reader.waiting().await {
        if !wants(&record) {
            reader.cursor.settle(record.seq);
        } else if !hand_to(dispatcher, &reader.cursor, &record, shutdown).await {
            return false;
        }
    }
    true
}

/// Hands `record` to `dispatcher`, waiting for a queue place (and so
/// watching for shutdown) only when the queue is full; false when shutting
/// down or refused (reading stops).
pub async fn hand_to(
    dispatcher: &Arc<Dispatcher>,
    cursor: &Arc<Cursor>,
    record: &Record,
    shutdown: &Shutdown,
) -> bool {
    let reservation = match dispatcher.try_reserve_place() {
        Some(reservation) => Some(reservation),
        None => tokio::select! {
            reservation = dispatcher.reserve() => reservation,
            () = shutdown.clone().wait() => return false,
        },
    };
    let Some(reservation) = reservation else {
        tracing::error!(consumer = %cursor.consumer, "the dispatcher refused an event; reading stops");
        return false;
    };
    send(reservation, cursor, record);
    true
}

/// Commits `reservation` with `record`, the cursor taking it until settled.
pub fn send(reservation: Reservation, cursor: &Arc<Cursor>, record: &Record) {
    cursor.take(record.seq);
    reservation.send_settled(
        record.event.clone(),
        Some(Settled {
            by: cursor.clone(),
            seq: record.seq,
            resume: cursor.resume(record.seq),
        }),
    );
}
