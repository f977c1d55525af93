//! The one thread that makes the event log durable. Appends reach it already
//! numbered and readable (`sequencer`); it takes every command that arrived
//! while it was committing the last batch and commits them together (group
//! commit): their events, new cursors' positions, moved cursors (never past
//! what the commit stores) and trims, all in one transaction and one fsync.
//! Only then are appends answered: no sender is told an event is kept that a
//! crash could take back — though a subscriber may have had it already, and
//! gets it again when its unanswered sender sends it again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::command::{Command, OpenedCursor};
use super::cursor::{Cursor, Start};
use super::log_state::LogState;
use super::record::{Batch, Encoded, Record, now_ms};
use super::sequencer::Sequencer;
use super::settings::LogSettings;
use super::sqlite::{self, LogError};
use crate::config::Fsync;
use crate::locks::lock;
use crate::telemetry::Metrics;

/// How often cursors are written when nothing else is.
const TICK: Duration = Duration::from_millis(200);
/// How often the writer looks for logs to trim (reading every cursor).
const TRIM_PLAN_EVERY: Duration = TICK;
/// At most this many batches are trimmed from one log in a commit that also
/// appends (small steps, so trimming adds little to an append's wait), and
/// in one with nothing else to do (the writer commits at least every tick).
/// Trims have no commits of their own: each would cost an fsync that
/// appends arriving meanwhile wait for.
const TRIM_BUSY_MOST: usize = 32;
const TRIM_IDLE_MOST: usize = 1024;
/// Bytes of events stored in one row at most.
const BATCH_BYTES: u64 = 16 << 20;
/// At most this many commands go into one commit.
const BATCH_MOST: usize = 4096;
/// How long the writer waits for more commands before a commit while
/// appends come in company (the last commit held more than one): fewer and
/// larger commits cost less CPU an event, and as readers see events before
/// they are stored, only the appends' answers wait for it. An append that
/// comes alone is committed at once. (Paced 3,000 events/s on 2 cores: CPU
/// an event 309 → 260 µs, the subscriber's p99 4.6 → 1.9 ms; issue 12's note.)
const COMMIT_DELAY: Duration = Duration::from_millis(2);
/// Unused pages (64 MiB of 4 KiB pages) above which some are handed back
/// to the file system, a few at a time in commits with nothing else to do.
const VACUUM_ABOVE: u64 = 16_384;
const VACUUM_PAGES: u32 = 64;

/// Whether the writer's last commit failed (a full disk, a broken file), and
/// why: the server is not ready until a commit that wrote succeeds.
#[derive(Default)]
pub struct CommitHealth {
    failing: Mutex<Option<String>>,
    /// Commits tried, for tests that wait for the next one.
    tried: std::sync::atomic::AtomicU64,
}

impl CommitHealth {
    /// Why commits fail, while they do.
    pub fn failing(&self) -> Option<String> {
        lock(&self.failing).clone()
    }

    #[cfg(test)]
    pub fn tried(&self) -> u64 {
        self.tried.load(std::sync::atomic::Ordering::Acquire)
    }

    fn committed(&self) {
        self.tried.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let mut failing = lock(&self.failing);
        if failing.is_some() {
            tracing::info!("event log commits succeed again");
            *failing = None;
        }
    }

    fn failed(&self, error: &LogError) {
        *lock(&self.failing) = Some(error.to_string());
        self.tried.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What logs share with the writer thread: its queue, and connections for
/// reading older events.
pub struct Io {
    pub path: PathBuf,
    pub sequencer: Mutex<Sequencer>,
    pub readers: Mutex<Vec<Connection>>,
}

impl Io {
    pub fn send(&self, command: Command) -> Result<(), LogError> {
        lock(&self.sequencer)
            .send(command)
            .map_err(|_| LogError::new(&self.path, "the writer has stopped"))
    }

    pub fn read(
        &self,
        log: i64,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<Record>, LogError> {
        self.reading(|conn| sqlite::read_events(conn, log, from, end, limit))
    }

    pub fn appended_at(&self, log: i64, seq: u64) -> Result<Option<i64>, LogError> {
        self.reading(|conn| sqlite::appended_at(conn, log, seq))
    }

    /// Runs `query` on a pooled reading connection.
    fn reading<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LogError> {
        let taken = lock(&self.readers).pop();
        let conn = match taken {
            Some(conn) => conn,
            None => sqlite::open_reader(&self.path)?,
        };
        let answer = query(&conn).map_err(|e| LogError::new(&self.path, e));
        lock(&self.readers).push(conn);
        answer
    }
}

struct WriterLog {
    log: Arc<LogState>,
    /// After the last event handed to the writer (stored, or lost with a
    /// failed commit: a number is never given twice).
    next_seq: u64,
    /// The first event the file still holds (nothing to trim below it).
    held_from: u64,
}

pub struct Writer {
    conn: Connection,
    path: PathBuf,
    fsync: Fsync,
    /// How long events are kept even when every cursor has passed them.
    retention: Duration,
    metrics: Arc<Metrics>,
    health: Arc<CommitHealth>,
    logs: HashMap<i64, WriterLog>,
    /// Logs created or dropped whose rows a failed commit did not write.
    unsaved: Vec<Change>,
    cursors: Arc<Mutex<HashMap<String, Arc<Cursor>>>>,
    /// Logs with batches every cursor passed, and the seq below which.
    trimming: HashMap<i64, u64>,
    /// Handing unused pages back, a few per idle commit.
    vacuuming: bool,
    last_flush: Instant,
    last_plan: Instant,
    last_sync: Instant,
}

#[derive(Clone)]
enum Change {
    Opened(i64, String),
    Dropped(i64),
}

/// A log's events in this commit.
#[derive(Default)]
struct Appended {
    /// Runs of consecutive events: the first one's number and append time,
    /// and the events.
    runs: Vec<(u64, i64, Vec<Encoded>)>,
    bytes: u64,
}

impl Appended {
    fn add(&mut self, first: u64, at_ms: i64, encoded: &[Encoded], bytes: u64) {
        self.bytes += bytes;
        match self.runs.last_mut() {
            Some((start, _, run)) if *start + run.len() as u64 == first => {
                run.extend_from_slice(encoded);
            }
            _ => self.runs.push((first, at_ms, encoded.to_vec())),
        }
    }

    fn count(&self) -> usize {
        self.runs.iter().map(|(_, _, run)| run.len()).sum()
    }
}

/// What a commit does once the file holds it.
#[derive(Default)]
struct Effects {
    appended: HashMap<i64, Appended>,
    appends: Vec<oneshot::Sender<Result<(), LogError>>>,
    /// How long the commit took (with `--fsync always`, its fsync).
    committed_in: Duration,
    /// Relay cursors this commit moved, and where to.
    relayed: Vec<(Arc<Cursor>, u64)>,
    /// Disk budget taken for relayed events, given back if the commit fails.
    budget_taken: Vec<(Arc<LogState>, u64)>,
    /// Trims planned in this commit: what later commits trim, once this
    /// one holds.
    planned: Option<HashMap<i64, u64>>,
    /// Bytes of appends to logs dropped in this commit, given back once it
    /// holds (a failed commit's appenders give theirs back themselves).
    dropped_appends: Vec<(Arc<LogState>, u64)>,
    cursors: Vec<(
        oneshot::Sender<Result<OpenedCursor, LogError>>,
        OpenedCursor,
    )>,
    written: Vec<(Arc<Cursor>, u64)>,
    retries_written: Vec<Arc<Cursor>>,
    /// Per log: bytes freed, and the first seq it then holds (None: it had
    /// nothing more to trim).
    trimmed: Vec<(i64, u64, Option<u64>)>,
    dropped: Vec<Arc<LogState>>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        settings: &LogSettings,
        metrics: Arc<Metrics>,
        known: Vec<(Arc<LogState>, u64, u64)>,
        cursors: Arc<Mutex<HashMap<String, Arc<Cursor>>>>,
        health: Arc<CommitHealth>,
    ) -> Self {
        let now = Instant::now();
        Self {
            conn,
            path,
            fsync: settings.fsync,
            retention: settings.retention,
            metrics,
            health,
            logs: known
                .into_iter()
                .map(|(log, next_seq, held_from)| {
                    let known = WriterLog {
                        log,
                        next_seq,
                        held_from,
                    };
                    (known.log.id, known)
                })
                .collect(),
            unsaved: Vec::new(),
            cursors,
            trimming: HashMap::new(),
            vacuuming: false,
            last_flush: now,
            last_plan: now - TRIM_PLAN_EVERY,
            last_sync: now,
        }
    }

    pub fn run(mut self, queue: Receiver<Command>) {
        let mut in_company = false;
        loop {
            // Handing pages back goes on between commands while there are
            // many; trims ride on the commits that happen anyway.
            let wait = if self.vacuuming { Duration::ZERO } else { TICK };
            let batch = match queue.recv_timeout(wait) {
                Ok(first) => {
                    let delay = if in_company {
                        COMMIT_DELAY
                    } else {
                        Duration::ZERO
                    };
                    gather(&queue, first, delay)
                }
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let appends = batch.iter().filter(|c| matches!(c, Command::Append { .. }));
            in_company = appends.count() > 1;
            let closing = batch.iter().any(|c| matches!(c, Command::Close));
            self.commit(batch, closing);
            if closing {
                break;
            }
        }
        self.finish();
    }

    fn commit(&mut self, batch: Vec<Command>, closing: bool) {
        let now = Instant::now();
        let flush = closing || now.duration_since(self.last_flush) >= TICK;
        let plan = !closing && now.duration_since(self.last_plan) >= TRIM_PLAN_EVERY;
        if batch.is_empty() && !flush && !plan && !self.vacuuming {
            return;
        }
        let mut effects = Effects::default();
        let result = self.write(batch, flush, plan, &mut effects);
        if flush {
            self.last_flush = now;
        }
        if plan {
            self.last_plan = now;
        }
        match result {
            Ok(()) => {
                self.health.committed();
                self.unsaved.clear();
                let appended = effects.appended.values().map(Appended::count).sum();
                match self.fsync {
                    Fsync::Always => self.metrics.log_synced(effects.committed_in, appended),
                    Fsync::Interval => self.metrics.log_appended(appended),
                }
                self.sync_if_due();
                self.apply(effects);
            }
            Err(error) => {
                let error = LogError::new(&self.path, error);
                tracing::error!(%error, "event log commit failed; its appends are refused");
                self.health.failed(&error);
                for reply in effects.appends {
                    let _ = reply.send(Err(error.clone()));
                }
                for (reply, _) in effects.cursors {
                    let _ = reply.send(Err(error.clone()));
                }
                let cursors = effects.written.into_iter().map(|(cursor, _)| cursor);
                for cursor in cursors.chain(effects.retries_written) {
                    cursor.unwritten_again();
                }
                for (log, bytes) in effects.budget_taken {
                    log.budget.give_back(bytes);
                }
            }
        }
    }

    /// Writes the batch in one transaction, gathering what to do after.
    fn write(
        &mut self,
        batch: Vec<Command>,
        flush: bool,
        plan: bool,
        effects: &mut Effects,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if self.health.failing().is_some() {
            // A commit that writes nothing succeeds on a full disk too: while
            // commits fail, each one writes, so only one the file took again
            // makes the server ready.
            sqlite::probe_write(&tx)?;
        }
        let at_ms = now_ms();
        let busy = !batch.is_empty();
        let mut failed = None;
        for change in &self.unsaved {
            match change {
                Change::Opened(id, name) => sqlite::insert_log(&tx, *id, name)?,
                Change::Dropped(id) => sqlite::delete_log(&tx, *id)?,
            }
        }
        // Relay cursors moved by appends not yet written: each is written
        // once, where the last of them left it, before any other command.
        let mut relays_unwritten = 0;
        for command in batch {
            if !matches!(command, Command::Append { .. }) && failed.is_none() {
                let moved = &effects.relayed[relays_unwritten..];
                relays_unwritten = effects.relayed.len();
                if let Err(error) = write_relay_cursors(&tx, moved) {
                    failed = Some(error);
                }
            }
            // After a failed statement the rest is only gathered, to be refused.
            match command {
                Command::Append {
                    log,
                    first,
                    at_ms: appended_at,
                    encoded,
                    size,
                    relayed,
                    reply,
                } => {
                    let count = encoded.len() as u64;
                    let Some(known) = self.logs.get_mut(&log) else {
                        // Its Broker or Channel went while the append was on
                        // its way: only this append is refused.
                        for copy in relayed {
                            copy.to.budget.give_back(copy.bytes);
                        }
                        let gone = LogError::new(&self.path, format!("log {log} was dropped"));
                        let _ = reply.send(Err(gone));
                        continue;
                    };
                    known.next_seq = first + count;
                    effects.appends.push(reply);
                    for copy in &relayed {
                        effects.budget_taken.push((copy.to.clone(), copy.bytes));
                    }
                    if failed.is_some() {
                        continue;
                    }
                    effects.appended.entry(log).or_default().add(
                        first,
                        appended_at,
                        &encoded,
                        size,
                    );
                    for copy in relayed {
                        let Some(target) = self.logs.get_mut(&copy.to.id) else {
                            continue;
                        };
                        target.next_seq = copy.first + count;
                        effects.appended.entry(copy.to.id).or_default().add(
                            copy.first,
                            appended_at,
                            &encoded,
                            copy.bytes,
                        );
                        effects.relayed.push((copy.cursor, copy.channel_next));
                    }
                }
                Command::OpenLog(log) => {
                    let change = Change::Opened(log.id, log.name.clone());
                    if let Err(error) = sqlite::insert_log(&tx, log.id, &log.name) {
                        failed.get_or_insert(error);
                    }
                    self.unsaved.push(change);
                    let known = WriterLog {
                        log,
                        next_seq: 0,
                        held_from: 0,
                    };
                    self.logs.insert(known.log.id, known);
                }
                Command::DropLog(log) => {
                    if let Err(error) = sqlite::delete_log(&tx, log.id) {
                        failed.get_or_insert(error);
                    }
                    self.unsaved.push(Change::Dropped(log.id));
                    self.logs.remove(&log.id);
                    if let Some(appended) = effects.appended.remove(&log.id) {
                        effects.dropped_appends.push((log.clone(), appended.bytes));
                    }
                    effects.dropped.push(log);
                }
                Command::OpenCursor {
                    consumer,
                    log,
                    start,
                    reply,
                } => {
                    if failed.is_some() {
                        effects.cursors.push((reply, OpenedCursor::default()));
                        continue;
                    }
                    // Commands come in the order their events were numbered:
                    // what was appended before this cursor was asked for is
                    // below `next`, whatever comes after is at or above it.
                    let next = self.logs.get(&log).map_or(0, |l| l.next_seq);
                    // The consumer's cursor of before (its task started again)
                    // is written down first and flushed no more: written later,
                    // its position could pass what the new one reads here.
                    let before = lock(&self.cursors).remove(&consumer);
                    if let Some(before) = before
                        && before.log_id == log
                        && let Err(error) = write_cursor(&tx, &before, next)
                    {
                        effects.cursors.push((reply, OpenedCursor::default()));
                        failed = Some(error);
                        continue;
                    }
                    match open_cursor(&tx, &consumer, log, start, next) {
                        Ok(opened) => {
                            // A trim planned before this cursor existed must
                            // not take what it starts at.
                            if let Some(below) = self.trimming.get_mut(&log) {
                                *below = (*below).min(opened.position);
                            }
                            effects.cursors.push((reply, opened));
                        }
                        Err(error) => {
                            effects.cursors.push((reply, OpenedCursor::default()));
                            failed = Some(error);
                        }
                    }
                }
                Command::RetainCursors(keep) => {
                    if let Err(error) = retain_cursors(&tx, &keep) {
                        failed.get_or_insert(error);
                    }
                }
                Command::Close => {}
            }
        }
        if failed.is_none() {
            write_relay_cursors(&tx, &effects.relayed[relays_unwritten..])?;
        }
        if let Some(error) = failed {
            return Err(error);
        }
        if flush {
            let cursors: Vec<Arc<Cursor>> = lock(&self.cursors).values().cloned().collect();
            for cursor in cursors {
                // Never past what this commit stores: a cursor can have passed
                // events that are numbered but not yet handed to the writer.
                let stored = self.logs.get(&cursor.log_id).map_or(0, |l| l.next_seq);
                let unwritten = cursor.unwritten_within(stored);
                if let Some(position) = unwritten.position {
                    effects.written.push((cursor.clone(), position));
                    sqlite::set_cursor(&tx, &cursor.consumer, cursor.log_id, position)?;
                }
                if let Some(retries) = unwritten.retries {
                    effects.retries_written.push(cursor.clone());
                    sqlite::set_retries(&tx, &cursor.consumer, &retries)?;
                }
            }
        }
        for (log, appended) in &effects.appended {
            for (run_first, run_at_ms, encoded) in &appended.runs {
                let mut start = 0;
                while start < encoded.len() {
                    // Rows of at most BATCH_BYTES (SQLite refuses blobs past
                    // 1 GB), each holding at least one event.
                    let (mut end, mut bytes) = (start, 0);
                    while end < encoded.len()
                        && (end == start || bytes + encoded[end].size() <= BATCH_BYTES)
                    {
                        bytes += encoded[end].size();
                        end += 1;
                    }
                    let batch = Batch::of(encoded[start..end].iter());
                    let first = run_first + start as u64;
                    sqlite::insert_batch(&tx, *log, first, end - start, *run_at_ms, bytes, &batch)?;
                    start = end;
                }
            }
        }
        if plan {
            effects.planned = Some(plan_trims(&tx, &self.logs, self.retention, at_ms)?);
        }
        let most = if busy { TRIM_BUSY_MOST } else { TRIM_IDLE_MOST };
        // Pages go back only when nothing else waits (new batches reuse
        // them, so only a drained backlog leaves many).
        self.vacuuming =
            !busy && self.trimming.is_empty() && sqlite::free_pages(&tx)? > VACUUM_ABOVE;
        if self.vacuuming {
            sqlite::vacuum_some(&tx, VACUUM_PAGES)?;
        }
        for (log, below) in effects.planned.as_ref().unwrap_or(&self.trimming) {
            let (freed, held_from) = sqlite::trim(&tx, *log, *below, most)?;
            effects.trimmed.push((*log, freed, held_from));
        }
        let started = Instant::now();
        tx.commit()?;
        effects.committed_in = started.elapsed();
        Ok(())
    }

    fn apply(&mut self, effects: Effects) {
        if let Some(planned) = effects.planned {
            self.trimming = planned;
        }
        let mut evicted = Vec::new();
        for (id, appended) in effects.appended {
            if let Some(known) = self.logs.get(&id) {
                evicted.push(known.log.stored_below(known.next_seq, appended.bytes));
            }
        }
        // Cursors first: whoever an answer wakes sees them where the file has
        // them.
        for (cursor, position) in effects.written {
            cursor.written(position);
        }
        for (cursor, next) in effects.relayed {
            cursor.written(next);
        }
        for reply in effects.appends {
            let _ = reply.send(Ok(()));
        }
        for (reply, opened) in effects.cursors {
            let _ = reply.send(Ok(opened));
        }
        for (id, freed, held_from) in effects.trimmed {
            let Some(held_from) = held_from else {
                // Nothing left below its bound.
                self.trimming.remove(&id);
                continue;
            };
            if let Some(known) = self.logs.get_mut(&id) {
                known.log.trimmed(freed);
                known.held_from = held_from;
            }
        }
        for log in effects.dropped {
            log.dropped();
        }
        for (log, bytes) in effects.dropped_appends {
            log.budget.give_back(bytes);
        }
        // Freeing events that left the tails comes last: the replies above
        // are what appenders wait for.
        drop(evicted);
    }

    /// `--fsync interval`: commits went to the operating system; the
    /// write-ahead log goes to the disk every `TICK`.
    fn sync_if_due(&mut self) {
        if self.fsync != Fsync::Interval || self.last_sync.elapsed() < TICK {
            return;
        }
        self.last_sync = Instant::now();
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        match std::fs::File::open(&wal).and_then(|f| f.sync_data()) {
            Ok(()) => self.metrics.log_synced(self.last_sync.elapsed(), 0),
            Err(error) => {
                tracing::warn!(%error, "could not sync the event log's write-ahead log")
            }
        }
    }

    /// Folds the write-ahead log into the file, so the next start reads one file.
    fn finish(self) {
        if let Err(error) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(%error, "event log checkpoint at shutdown failed");
        }
    }
}

/// Each relay cursor in `moved` (in the order the appends moved them) where
/// the last move left it: one statement a cursor, not one an append.
fn write_relay_cursors(tx: &Connection, moved: &[(Arc<Cursor>, u64)]) -> rusqlite::Result<()> {
    let mut written: Vec<&Arc<Cursor>> = Vec::new();
    for (cursor, position) in moved.iter().rev() {
        if written.iter().any(|done| Arc::ptr_eq(done, cursor)) {
            continue;
        }
        sqlite::set_cursor(tx, &cursor.consumer, cursor.log_id, *position)?;
        written.push(cursor);
    }
    Ok(())
}

/// `first` and whatever else the queue holds, up to `BATCH_MOST` commands,
/// after waiting `delay` for more (not past a `Close`).
fn gather(queue: &Receiver<Command>, first: Command, delay: Duration) -> Vec<Command> {
    // One sleep rather than a wake-up for every command that arrives: a
    // sender wakes no one while the writer is not waiting on the queue.
    if !delay.is_zero() && !matches!(first, Command::Close) {
        std::thread::sleep(delay);
    }
    let mut batch = vec![first];
    while batch.len() < BATCH_MOST && !matches!(batch.last(), Some(Command::Close)) {
        match queue.try_recv() {
            Ok(command) => batch.push(command),
            Err(_) => break,
        }
    }
    batch
}

/// The logs holding batches that every cursor on them passed (and, with a
/// retention, older than it), each with the seq below which.
fn plan_trims(
    tx: &Connection,
    logs: &HashMap<i64, WriterLog>,
    retention: Duration,
    at_ms: i64,
) -> rusqlite::Result<HashMap<i64, u64>> {
    let lowest: HashMap<i64, u64> = sqlite::lowest_cursors(tx)?.into_iter().collect();
    let before_ms = at_ms - retention.as_millis() as i64;
    let mut trimming = HashMap::new();
    for (id, known) in logs {
        let next = known.next_seq;
        let mut below = lowest.get(id).copied().unwrap_or(next);
        if known.held_from >= below {
            continue;
        }
        if !retention.is_zero() {
            below = below.min(sqlite::first_since(tx, *id, before_ms)?.unwrap_or(next));
        }
        trimming.insert(*id, below);
    }
    Ok(trimming)
}

/// Writes a cursor whole (what it holds below `stored`).
fn write_cursor(conn: &Connection, cursor: &Cursor, stored: u64) -> rusqlite::Result<()> {
    let (position, retries) = cursor.whole_within(stored);
    sqlite::set_cursor(conn, &cursor.consumer, cursor.log_id, position)?;
    sqlite::set_retries(conn, &cursor.consumer, &retries)
}

fn open_cursor(
    conn: &Connection,
    consumer: &str,
    log: i64,
    start: Start,
    next: u64,
) -> rusqlite::Result<OpenedCursor> {
    if let Some((on, position)) = sqlite::cursor(conn, consumer)?
        && on == log
    {
        let retries = sqlite::retries(conn, consumer)?;
        return Ok(OpenedCursor { position, retries });
    }
    let position = match start {
        Start::End => next,
        Start::Since(at_ms) => sqlite::first_since(conn, log, at_ms)?.unwrap_or(next),
    };
    sqlite::set_cursor(conn, consumer, log, position)?;
    sqlite::set_retries(conn, consumer, &[])?;
    Ok(OpenedCursor {
        position,
        retries: HashMap::new(),
    })
}

fn retain_cursors(conn: &Connection, keep: &HashSet<String>) -> rusqlite::Result<()> {
    for name in sqlite::cursor_names(conn)? {
        if !keep.contains(&name) {
            sqlite::delete_cursor(conn, &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn commands(batch: &[Command]) -> Vec<&'static str> {
        batch
            .iter()
            .map(|c| match c {
                Command::RetainCursors(_) => "retain",
                Command::Close => "close",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn a_commit_waits_for_company_only_when_told_to_and_never_past_close() {
        let (send, queue) = mpsc::channel();
        send.send(Command::RetainCursors(HashSet::new()))
            .expect("sent");
        let alone = gather(
            &queue,
            Command::RetainCursors(HashSet::new()),
            Duration::ZERO,
        );
        assert_eq!(
            commands(&alone),
            ["retain", "retain"],
            "what is queued comes along"
        );

        // Told to wait, it waits the whole delay (company may come), then
        // takes what came, up to and with a Close.
        for command in [
            Command::RetainCursors(HashSet::new()),
            Command::Close,
            Command::RetainCursors(HashSet::new()),
        ] {
            send.send(command).expect("sent");
        }
        let delay = Duration::from_millis(20);
        let started = Instant::now();
        let waited = gather(&queue, Command::RetainCursors(HashSet::new()), delay);
        assert!(started.elapsed() >= delay, "waited for company");
        assert_eq!(commands(&waited), ["retain", "retain", "close"]);
        let after = gather(&queue, Command::Close, Duration::ZERO);
        assert_eq!(commands(&after), ["close"], "nothing taken past a Close");
        assert!(queue.try_recv().is_ok(), "left for later");
    }
}
