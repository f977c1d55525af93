//! The event log as the dataplane uses it: `EventLog` opens the file and
//! starts the writer; each Broker and Channel has a `Log` to append to and
//! read from; each consumer has a `Cursor`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rusqlite::TransactionBehavior;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::budget::DiskBudget;
use super::cursor::{Cursor, Start};
use super::record::{Encoded, Record};
use super::sqlite::{self, LogError};
use crate::config::Fsync;
use crate::locks::lock;
use crate::mesh::event::PreparedEvent;

/// How many recent events each log keeps in memory for consumers that keep up.
const TAIL_EVENTS: usize = 2048;

#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    pub fsync: Fsync,
    /// Bytes all the Broker logs of one namespace may hold.
    pub namespace_bytes: u64,
    /// Bytes one Channel's log may hold.
    pub channel_bytes: u64,
    /// How long events are kept even when every cursor has passed them.
    pub retention: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Broker,
    Channel,
}

impl LogKind {
    fn name(self, namespace: &str, name: &str) -> String {
        let kind = match self {
            Self::Broker => "broker",
            Self::Channel => "channel",
        };
        format!("{kind}/{namespace}/{name}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the disk budget of {0} is full")]
    Full(String),
    #[error(transparent)]
    Failed(#[from] LogError),
}

/// What logs share with the writer thread: its queue, and connections for
/// reading older events.
pub(super) struct Io {
    pub path: PathBuf,
    pub commands: Mutex<mpsc::Sender<Command>>,
    readers: Mutex<Vec<Connection>>,
}

impl Io {
    pub fn send(&self, command: Command) -> Result<(), LogError> {
        lock(&self.commands)
            .send(command)
            .map_err(|_| LogError::new(&self.path, "the writer has stopped"))
    }

    fn read(&self, log: i64, from: u64, end: u64, limit: usize) -> Result<Vec<Record>, LogError> {
        let taken = lock(&self.readers).pop();
        let conn = match taken {
            Some(conn) => conn,
            None => sqlite::open_reader(&self.path)?,
        };
        let records = sqlite::read_events(&conn, log, from, end, limit)
            .map_err(|e| LogError::new(&self.path, e));
        lock(&self.readers).push(conn);
        records
    }
}

pub struct Log {
    pub(super) id: i64,
    pub name: String,
    pub(super) budget: Arc<DiskBudget>,
    /// Bytes this log holds on disk.
    pub(super) bytes: AtomicU64,
    /// Events below this seq are committed and may be read.
    pub(super) end: watch::Sender<u64>,
    pub(super) tail: Mutex<VecDeque<Record>>,
    io: Arc<Io>,
}

impl Log {
    /// Appends `events` in order; answers once they are durable (as `--fsync`
    /// says), or refuses all of them when the budget is full.
    pub async fn append(&self, events: &[Arc<PreparedEvent>]) -> Result<(), AppendError> {
        let encoded: Vec<_> = events
            .iter()
            .map(|event| (event.clone(), Encoded::of(event)))
            .collect();
        let size = encoded.iter().map(|(_, e)| e.size()).sum();
        if !self.budget.try_take(size) {
            return Err(AppendError::Full(self.name.clone()));
        }
        let (reply, answer) = oneshot::channel();
        let sent = self.io.send(Command::Append {
            log: self.id,
            events: encoded,
            size,
            reply,
        });
        let committed = match sent {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(LogError::new(&self.io.path, "the writer has stopped"))),
            Err(error) => Err(error),
        };
        committed.map_err(|error| {
            self.budget.give_back(size);
            AppendError::Failed(error)
        })
    }

    /// Up to `limit` committed events from `from` on: from memory when the
    /// log's tail still holds `from`, else from the file.
    pub async fn read(&self, from: u64, limit: usize) -> Result<Vec<Record>, LogError> {
        let end = *self.end.borrow();
        if from >= end {
            return Ok(Vec::new());
        }
        {
            let tail = lock(&self.tail);
            if let Some(first) = tail.front()
                && first.seq <= from
            {
                let skip = (from - first.seq) as usize;
                return Ok(tail.iter().skip(skip).take(limit).cloned().collect());
            }
        }
        let io = self.io.clone();
        let id = self.id;
        tokio::task::spawn_blocking(move || io.read(id, from, end, limit))
            .await
            .map_err(|e| LogError::new(&self.io.path, e))?
    }

    /// Follows the committed end (events below it may be read).
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    pub fn end(&self) -> u64 {
        *self.end.borrow()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Called by the writer after a commit: the events are readable.
    pub(super) fn committed(&self, records: Vec<Record>, end: u64) {
        {
            let mut tail = lock(&self.tail);
            tail.extend(records);
            let over = tail.len().saturating_sub(TAIL_EVENTS);
            tail.drain(..over);
        }
        self.end.send_replace(end);
    }
}

pub struct EventLog {
    io: Arc<Io>,
    settings: LogSettings,
    logs: Mutex<HashMap<String, Arc<Log>>>,
    next_log_id: AtomicI64,
    /// Each namespace's budget for its Broker logs.
    namespaces: Mutex<HashMap<String, Arc<DiskBudget>>>,
    pub(super) cursors: Arc<Mutex<HashMap<String, Arc<Cursor>>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl EventLog {
    /// Opens (or creates) `events.db` in `dir` and starts its writer.
    pub fn open(dir: &Path, settings: LogSettings) -> Result<Arc<Self>, LogError> {
        let path = sqlite::path_of(dir);
        let conn = sqlite::open_writer(&path, settings.fsync)?;
        let stored = sqlite::stored_logs(&conn).map_err(|e| LogError::new(&path, e))?;
        let (commands, queue) = mpsc::channel();
        let io = Arc::new(Io {
            path: path.clone(),
            commands: Mutex::new(commands),
            readers: Mutex::new(Vec::new()),
        });
        let event_log = Arc::new(Self {
            io: io.clone(),
            settings,
            logs: Mutex::new(HashMap::new()),
            next_log_id: AtomicI64::new(stored.iter().map(|l| l.id).max().unwrap_or(0) + 1),
            namespaces: Mutex::new(HashMap::new()),
            cursors: Arc::new(Mutex::new(HashMap::new())),
            writer: Mutex::new(None),
        });
        let mut known = Vec::new();
        for log in stored {
            let made = event_log.make_log(log.id, log.name.clone(), log.next_seq);
            made.bytes.store(log.bytes, Ordering::Release);
            made.budget.add(log.bytes);
            lock(&event_log.logs).insert(log.name, made.clone());
            known.push((made, log.next_seq));
        }
        let writer = Writer::new(conn, path, settings, known, event_log.cursors.clone());
        let thread = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| LogError::new(&io.path, e))?;
        *lock(&event_log.writer) = Some(thread);
        Ok(event_log)
    }

    fn make_log(&self, id: i64, name: String, next_seq: u64) -> Arc<Log> {
        let budget = match name.strip_prefix("broker/").and_then(|r| r.split_once('/')) {
            Some((namespace, _)) => lock(&self.namespaces)
                .entry(namespace.to_string())
                .or_insert_with(|| Arc::new(DiskBudget::new(self.settings.namespace_bytes)))
                .clone(),
            None => Arc::new(DiskBudget::new(self.settings.channel_bytes)),
        };
        Arc::new(Log {
            id,
            name,
            budget,
            bytes: AtomicU64::new(0),
            end: watch::Sender::new(next_seq),
            tail: Mutex::new(VecDeque::new()),
            io: self.io.clone(),
        })
    }

    /// The log of a Broker or Channel, created when it has none yet.
    pub fn log(&self, kind: LogKind, namespace: &str, name: &str) -> Result<Arc<Log>, LogError> {
        let name = kind.name(namespace, name);
        if let Some(log) = lock(&self.logs).get(&name) {
            return Ok(log.clone());
        }
        let id = self.next_log_id.fetch_add(1, Ordering::AcqRel);
        let log = self.make_log(id, name.clone(), 0);
        self.io.send(Command::OpenLog(log.clone()))?;
        Ok(lock(&self.logs).entry(name).or_insert(log).clone())
    }

    /// Drops every log not named in `keep` (its events and cursors with it).
    pub fn retain_logs(&self, keep: &HashSet<String>) {
        let gone: Vec<Arc<Log>> = {
            let mut logs = lock(&self.logs);
            let gone = logs
                .iter()
                .filter(|(name, _)| !keep.contains(*name))
                .map(|(_, log)| log.clone())
                .collect();
            logs.retain(|name, _| keep.contains(name));
            gone
        };
        for log in gone {
            tracing::info!(log = %log.name, "its Broker or Channel is gone; log dropped");
            if let Err(error) = self.io.send(Command::DropLog(log)) {
                tracing::error!(%error, "could not drop a log");
            }
        }
    }

    /// A consumer's cursor on `log`: where it was, or a new one at `start`.
    /// Answered once the file holds it, so no event appended afterwards can
    /// be missed by the consumer after a crash.
    pub async fn cursor(
        &self,
        consumer: &str,
        log: &Arc<Log>,
        start: Start,
    ) -> Result<Arc<Cursor>, LogError> {
        let (reply, answer) = oneshot::channel();
        self.io.send(Command::OpenCursor {
            consumer: consumer.to_string(),
            log: log.id,
            start,
            reply,
        })?;
        let position = answer
            .await
            .unwrap_or_else(|_| Err(LogError::new(&self.io.path, "the writer has stopped")))?;
        let cursor = Arc::new(Cursor::new(consumer.to_string(), log.id, position));
        lock(&self.cursors).insert(consumer.to_string(), cursor.clone());
        Ok(cursor)
    }

    /// Drops every cursor not named in `keep`: those consumers are gone.
    pub fn retain_cursors(&self, keep: HashSet<String>) {
        lock(&self.cursors).retain(|name, _| keep.contains(name));
        if let Err(error) = self.io.send(Command::RetainCursors(keep)) {
            tracing::error!(%error, "could not drop cursors");
        }
    }

    /// Writes every cursor, commits, and stops the writer.
    pub fn close(&self) {
        let _ = self.io.send(Command::Close);
        if let Some(thread) = lock(&self.writer).take()
            && thread.join().is_err()
        {
            tracing::error!("the event log's writer panicked");
        }
    }

    /// Bytes held on disk by each namespace's Broker logs.
    pub fn namespace_bytes(&self) -> Vec<(String, u64)> {
        lock(&self.namespaces)
            .iter()
            .map(|(namespace, budget)| (namespace.clone(), budget.used()))
            .collect()
    }

    pub fn path(&self) -> &Path {
        &self.io.path
    }
}

// The writer thread.
// The one thread that writes the event log. It takes every command that
// arrived while it was committing the last batch and commits them together
// (group commit): appends get their seqs, new cursors their positions,
// moved cursors are written, and logs are trimmed below their lowest cursor,
// all in one transaction and one fsync. Only then are appends answered and
// their events handed to readers, so no one reads or acknowledges an event
// that a crash could take back.

/// How often cursors are written when nothing else is.
const TICK: Duration = Duration::from_millis(200);
/// How often logs are trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(1);
/// At most this many events are trimmed from one log in one commit, so a
/// long backlog going at once does not hold appends up.
const TRIM_MOST: usize = 20_000;
/// At most this many commands go into one commit.
const BATCH_MOST: usize = 4096;
/// Pages handed back to the file system after a trim.
const VACUUM_PAGES: u32 = 2048;

pub enum Command {
    Append {
        log: i64,
        events: Vec<(Arc<PreparedEvent>, Encoded)>,
        size: u64,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    OpenLog(Arc<Log>),
    DropLog(Arc<Log>),
    OpenCursor {
        consumer: String,
        log: i64,
        start: Start,
        reply: oneshot::Sender<Result<u64, LogError>>,
    },
    RetainCursors(HashSet<String>),
    Close,
}

struct WriterLog {
    log: Arc<Log>,
    next_seq: u64,
}

pub struct Writer {
    conn: Connection,
    path: PathBuf,
    settings: LogSettings,
    logs: HashMap<i64, WriterLog>,
    /// Logs created or dropped whose rows a failed commit did not write.
    unsaved: Vec<Change>,
    cursors: Arc<Mutex<HashMap<String, Arc<Cursor>>>>,
    last_flush: Instant,
    last_trim: Instant,
    last_sync: Instant,
}

#[derive(Clone)]
enum Change {
    Opened(i64, String),
    Dropped(i64),
}

/// What a commit does once the file holds it.
#[derive(Default)]
struct Effects {
    appended: HashMap<i64, (Vec<Record>, u64)>,
    next_seqs: HashMap<i64, u64>,
    appends: Vec<oneshot::Sender<Result<(), LogError>>>,
    cursors: Vec<(oneshot::Sender<Result<u64, LogError>>, u64)>,
    written: Vec<(Arc<Cursor>, u64)>,
    trimmed: Vec<(i64, u64)>,
    dropped: Vec<Arc<Log>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        settings: LogSettings,
        known: Vec<(Arc<Log>, u64)>,
        cursors: Arc<Mutex<HashMap<String, Arc<Cursor>>>>,
    ) -> Self {
        let now = Instant::now();
        Self {
            conn,
            path,
            settings,
            logs: known
                .into_iter()
                .map(|(log, next_seq)| (log.id, WriterLog { log, next_seq }))
                .collect(),
            unsaved: Vec::new(),
            cursors,
            last_flush: now,
            last_trim: now,
            last_sync: now,
        }
    }

    pub fn run(mut self, queue: Receiver<Command>) {
        loop {
            let mut batch = Vec::new();
            match queue.recv_timeout(TICK) {
                Ok(command) => batch.push(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < BATCH_MOST {
                match queue.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
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
        let trim = !closing && now.duration_since(self.last_trim) >= TRIM_EVERY;
        if batch.is_empty() && !flush && !trim {
            return;
        }
        let mut effects = Effects::default();
        let result = self.write(batch, flush, trim, &mut effects);
        if flush {
            self.last_flush = now;
        }
        if trim {
            self.last_trim = now;
        }
        match result {
            Ok(()) => {
                self.unsaved.clear();
                self.sync_if_due();
                self.apply(effects);
            }
            Err(error) => {
                let error = LogError::new(&self.path, error);
                tracing::error!(%error, "event log commit failed; its appends are refused");
                for reply in effects.appends {
                    let _ = reply.send(Err(error.clone()));
                }
                for (reply, _) in effects.cursors {
                    let _ = reply.send(Err(error.clone()));
                }
                for (cursor, _) in effects.written {
                    cursor.unwritten_again();
                }
            }
        }
    }

    /// Writes the batch in one transaction, gathering what to do after.
    fn write(
        &mut self,
        batch: Vec<Command>,
        flush: bool,
        trim: bool,
        effects: &mut Effects,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at_ms = now_ms();
        let mut failed = None;
        for change in &self.unsaved {
            match change {
                Change::Opened(id, name) => sqlite::insert_log(&tx, *id, name)?,
                Change::Dropped(id) => sqlite::delete_log(&tx, *id)?,
            }
        }
        for command in batch {
            // After a failed statement the rest is only gathered, to be refused.
            match command {
                Command::Append {
                    log,
                    events,
                    size,
                    reply,
                } => {
                    effects.appends.push(reply);
                    if failed.is_some() {
                        continue;
                    }
                    let Some(known) = self.logs.get(&log) else {
                        failed = Some(rusqlite::Error::InvalidParameterName(format!(
                            "log {log} was dropped"
                        )));
                        continue;
                    };
                    let next = effects.next_seqs.entry(log).or_insert(known.next_seq);
                    let (records, bytes) = effects.appended.entry(log).or_default();
                    for (event, encoded) in events {
                        if let Err(error) = sqlite::insert_event(&tx, log, *next, at_ms, &encoded) {
                            failed = Some(error);
                            break;
                        }
                        records.push(Record {
                            seq: *next,
                            at_ms,
                            event,
                        });
                        *next += 1;
                    }
                    *bytes += size;
                }
                Command::OpenLog(log) => {
                    let change = Change::Opened(log.id, log.name.clone());
                    if let Err(error) = sqlite::insert_log(&tx, log.id, &log.name) {
                        failed.get_or_insert(error);
                    }
                    self.unsaved.push(change);
                    self.logs.insert(log.id, WriterLog { log, next_seq: 0 });
                }
                Command::DropLog(log) => {
                    if let Err(error) = sqlite::delete_log(&tx, log.id) {
                        failed.get_or_insert(error);
                    }
                    self.unsaved.push(Change::Dropped(log.id));
                    self.logs.remove(&log.id);
                    effects.next_seqs.remove(&log.id);
                    effects.appended.remove(&log.id);
                    effects.dropped.push(log);
                }
                Command::OpenCursor {
                    consumer,
                    log,
                    start,
                    reply,
                } => {
                    if failed.is_some() {
                        effects.cursors.push((reply, 0));
                        continue;
                    }
                    let next = effects
                        .next_seqs
                        .get(&log)
                        .copied()
                        .or_else(|| self.logs.get(&log).map(|l| l.next_seq))
                        .unwrap_or(0);
                    match open_cursor(&tx, &consumer, log, start, next) {
                        Ok(position) => effects.cursors.push((reply, position)),
                        Err(error) => {
                            effects.cursors.push((reply, 0));
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
        if let Some(error) = failed {
            return Err(error);
        }
        if flush {
            let cursors: Vec<Arc<Cursor>> = lock(&self.cursors).values().cloned().collect();
            for cursor in cursors {
                if let Some(position) = cursor.unwritten() {
                    effects.written.push((cursor.clone(), position));
                    sqlite::set_cursor(&tx, &cursor.consumer, cursor.log_id, position)?;
                }
            }
        }
        if trim {
            let lowest: HashMap<i64, u64> = sqlite::lowest_cursors(&tx)?.into_iter().collect();
            let before_ms = at_ms - self.settings.retention.as_millis() as i64;
            for (id, known) in &self.logs {
                let next = effects.next_seqs.get(id).copied().unwrap_or(known.next_seq);
                let below = lowest.get(id).copied().unwrap_or(next);
                let freed = sqlite::trim(&tx, *id, below, before_ms, TRIM_MOST)?;
                if freed > 0 {
                    effects.trimmed.push((*id, freed));
                }
            }
            if !effects.trimmed.is_empty() {
                sqlite::vacuum_some(&tx, VACUUM_PAGES)?;
            }
        }
        tx.commit()
    }

    fn apply(&mut self, effects: Effects) {
        for (id, next) in &effects.next_seqs {
            if let Some(known) = self.logs.get_mut(id) {
                known.next_seq = *next;
            }
        }
        for (id, (records, bytes)) in effects.appended {
            if let Some(known) = self.logs.get(&id) {
                known
                    .log
                    .bytes
                    .fetch_add(bytes, std::sync::atomic::Ordering::AcqRel);
                known.log.committed(records, known.next_seq);
            }
        }
        for reply in effects.appends {
            let _ = reply.send(Ok(()));
        }
        for (reply, position) in effects.cursors {
            let _ = reply.send(Ok(position));
        }
        for (cursor, position) in effects.written {
            cursor.written(position);
        }
        for (id, freed) in effects.trimmed {
            if let Some(known) = self.logs.get(&id) {
                known.log.budget.give_back(freed);
                let _ = known.log.bytes.fetch_update(
                    std::sync::atomic::Ordering::AcqRel,
                    std::sync::atomic::Ordering::Acquire,
                    |bytes| Some(bytes.saturating_sub(freed)),
                );
            }
        }
        for log in effects.dropped {
            log.budget.give_back(log.bytes());
        }
    }

    /// `--fsync interval`: commits went to the operating system; the
    /// write-ahead log goes to the disk every `TICK`.
    fn sync_if_due(&mut self) {
        if self.settings.fsync != Fsync::Interval || self.last_sync.elapsed() < TICK {
            return;
        }
        self.last_sync = Instant::now();
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        if let Err(error) = std::fs::File::open(&wal).and_then(|f| f.sync_data()) {
            tracing::warn!(%error, "could not sync the event log's write-ahead log");
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

fn open_cursor(
    conn: &Connection,
    consumer: &str,
    log: i64,
    start: Start,
    next: u64,
) -> rusqlite::Result<u64> {
    if let Some((on, position)) = sqlite::cursor(conn, consumer)?
        && on == log
    {
        return Ok(position);
    }
    let position = match start {
        Start::End => next,
        Start::Since(at_ms) => sqlite::first_since(conn, log, at_ms)?.unwrap_or(next),
    };
    sqlite::set_cursor(conn, consumer, log, position)?;
    Ok(position)
}

fn retain_cursors(conn: &Connection, keep: &HashSet<String>) -> rusqlite::Result<()> {
    for name in sqlite::cursor_names(conn)? {
        if !keep.contains(&name) {
            sqlite::delete_cursor(conn, &name)?;
        }
    }
    Ok(())
}
