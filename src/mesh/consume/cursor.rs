//! A consumer's reading of its log: its cursor (opened again and again while
//! the log's file refuses), waiting for events past what it read, reading
//! them a batch at a time, and settling deliveries against the cursor.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::mesh::dispatch::{RetryBy, RetryDue, Settle};
use crate::mesh::log::{Cursor, EventLog, Log, Owner, Record, Start};
use crate::shutdown::Shutdown;

/// How long to wait before trying the file again after it refused.
pub const RETRY: Duration = Duration::from_secs(1);

impl Settle for Cursor {
    fn settle(&self, seq: u64) {
        Cursor::settle(self, seq);
    }

    fn retrying(&self, seq: u64, due: RetryDue) -> RetryBy {
        Cursor::retrying(self, seq, due);
        RetryBy::Dispatcher
    }
}

pub struct Reader {
    consumer: String,
    log: Arc<Log>,
    pub cursor: Arc<Cursor>,
    end: watch::Receiver<u64>,
    next: u64,
    batch: usize,
    shutdown: Shutdown,
}

impl Reader {
    /// Reads `log` from the consumer's cursor, `batch` events at a time;
    /// None when shutting down first.
    pub async fn open(
        event_log: &EventLog,
        consumer: String,
        owner: Owner,
        log: Arc<Log>,
        start: Start,
        batch: usize,
        shutdown: Shutdown,
    ) -> Option<Self> {
        let cursor = open(event_log, &consumer, &log, start, &shutdown).await?;
        cursor.owned_by(owner);
        Some(Self {
            end: log.watch_end(),
            next: cursor.read_to(),
            consumer,
            log,
            cursor,
            batch,
            shutdown,
        })
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The events after what was passed, once there are some; None when
    /// shutting down (or the log is gone).
    pub async fn next_batch(&mut self) -> Option<Vec<Record>> {
        loop {
            let next = self.next;
            tokio::select! {
                changed = self.end.wait_for(|end| *end > next) => changed.ok()?,
                () = self.shutdown.clone().wait() => return None,
            };
            match self.log.read(next, self.batch).await {
                Ok(batch) if !batch.is_empty() => return Some(batch),
                Ok(_) => {
                    // Only a log trimmed under the cursor gets here (dropped
                    // and made again): go on from what it holds.
                    let end = self.log.end();
                    tracing::warn!(consumer = %self.consumer, from = next, to = end, "events under the cursor are gone; skipping to the log's end");
                    self.passed(end);
                }
                Err(error) => {
                    tracing::error!(consumer = %self.consumer, %error, "cannot read the log; trying again");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// The events below the cursor's position that wait for a retry (the
    /// position passed them before the consumer last stopped), read back by
    /// number to resume their schedules; empty when shutting down first.
    pub async fn waiting(&self) -> Vec<Record> {
        let mut waiting = Vec::new();
        for seq in self.cursor.waiting_below_position() {
            loop {
                match self.log.read(seq, 1).await {
                    Ok(read) => {
                        match read.into_iter().find(|record| record.seq == seq) {
                            Some(record) => waiting.push(record),
                            None => {
                                // Its append's commit failed after delivery had
                                // begun: its sender was told so, and sends it again.
                                tracing::warn!(consumer = %self.consumer, seq, "an event that waited for a retry was never stored; its schedule goes");
                                self.cursor.settle(seq);
                            }
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::error!(consumer = %self.consumer, %error, "cannot read the log; trying again");
                        tokio::select! {
                            () = tokio::time::sleep(RETRY) => {}
                            () = self.shutdown.clone().wait() => return Vec::new(),
                        }
                    }
                }
            }
        }
        waiting
    }

    /// Where reading goes on.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Read everything the log holds so far.
    pub fn caught_up(&self) -> bool {
        self.next >= self.log.end()
    }

    /// The cursor was moved for this consumer (by the writer's relaying):
    /// reading goes on from where it is now.
    pub fn resync(&mut self) {
        self.next = self.next.max(self.cursor.read_to());
    }

    /// Everything before `next` was handled: taken, passed over or relayed.
    pub fn passed(&mut self, next: u64) {
        self.next = next;
        self.cursor.passed(next);
    }

    pub fn is_down(&self) -> bool {
        self.shutdown.is_down()
    }
}

/// The consumer's cursor; None when shutting down first.
async fn open(
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
