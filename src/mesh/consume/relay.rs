//! A Subscription from a Channel to one of our Brokers: the Channel's events
//! appended to the Broker's log, a batch at a time, the cursor moving only once
//! the Broker's log holds them. A full Broker (its namespace's disk budget)
//! makes the relay wait and try again: the namespace lags behind the Channel,
//! and no other namespace notices. Once caught up, the relay hands its work
//! to the log's writer, which appends the Channel's events to the Broker's
//! log in the commit that holds them, until it hands it back (the Broker is
//! full); the task then reads on from its cursor.

use std::sync::Arc;
use std::time::Duration;

use super::cursor::{RETRY, Reader};
use crate::mesh::event::PreparedEvent;
use crate::mesh::log::{AppendError, EventLog, Log, Owner, Start};
use crate::mesh::routing::OpeningGuard;
use crate::shutdown::Shutdown;

const RELAY_BATCH: usize = 256;
const FULL_FIRST_WAIT: Duration = Duration::from_millis(20);
const FULL_LONGEST_WAIT: Duration = Duration::from_secs(1);

pub async fn relay(
    event_log: Arc<EventLog>,
    consumer: String,
    owner: Owner,
    from: Arc<Log>,
    to: Arc<Log>,
    shutdown: Shutdown,
    mut opening: OpeningGuard,
) {
    let opened = Reader::open(
        &event_log,
        consumer,
        owner,
        from.clone(),
        Start::End,
        RELAY_BATCH,
        shutdown.clone(),
    );
    let Some(mut reader) = opened.await else {
        return;
    };
    opening.done();
    // Events the consumer waited to retry while it delivered over HTTP (its
    // Subscription now hands over to a Broker of ours) go on to that Broker.
    let waiting = reader.waiting().await;
    if !waiting.is_empty() {
        let events: Vec<Arc<PreparedEvent>> = waiting.iter().map(|r| r.event.clone()).collect();
        if !hand_over(&to, &events, reader.consumer(), &shutdown).await {
            return;
        }
        for record in &waiting {
            reader.cursor.settle(record.seq);
        }
    }
    loop {
        if reader.caught_up() {
            let at = reader.next();
            let cursor = reader.cursor.clone();
            if let Some(relayed_until) = event_log.attach_relay(&from, &to, cursor, at) {
                tokio::select! {
                    _ = relayed_until => {}
                    () = shutdown.clone().wait() => return,
                }
                reader.resync();
                continue;
            }
        }
        let Some(batch) = reader.next_batch().await else {
            return;
        };
        let Some(last) = batch.last().map(|r| r.seq) else {
            continue;
        };
        let events: Vec<Arc<PreparedEvent>> = batch.into_iter().map(|r| r.event).collect();
        if !hand_over(&to, &events, reader.consumer(), &shutdown).await {
            return;
        }
        reader.passed(last + 1);
    }
}

/// Appends `events` to the Broker's log, waiting (longer each time) while
/// its budget is full and trying again while the file refuses; false when
/// shutting down first.
async fn hand_over(
    to: &Log,
    events: &[Arc<PreparedEvent>],
    consumer: &str,
    shutdown: &Shutdown,
) -> bool {
    let mut wait = FULL_FIRST_WAIT;
    loop {
        let pause = match to.append(events).await {
            Ok(()) => return true,
            Err(AppendError::Full(_)) => {
                let pause = wait;
                wait = (wait * 2).min(FULL_LONGEST_WAIT);
                pause
            }
            Err(error) => {
                tracing::error!(%consumer, %error, "cannot append to the Broker's log; trying again");
                RETRY
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.clone().wait() => return false,
        }
    }
}
