//! The event log as the dataplane uses it: `EventLog` opens the file and
//! starts the writer (`writer`); each Broker and Channel has a `Log` to append
//! to and read from; each consumer has a `Cursor`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{oneshot, watch};

use super::budget::DiskBudget;
use super::checkpoint::Checkpointer;
use super::command::Command;
use super::cursor::{Cursor, Start};
use super::fanout::Fanout;
use super::log_state::LogState;
use super::record::{Encoded, Record, now_ms};
use super::sequencer::Sequencer;
use super::settings::LogSettings;
use super::sqlite::{self, LogError};
use super::writer::{CommitHealth, Io, Writer};
use crate::locks::lock;
use crate::mesh::event::PreparedEvent;
use crate::telemetry::{ConsumerLag, LogReport, Metrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Broker,
    Channel,
}

impl LogKind {
    pub fn name(self, namespace: &str, name: &str) -> String {
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
    /// The engine cannot take events now (JetStream unreachable); it may soon.
    #[error("{0}")]
    Unavailable(String),
    /// The engine never takes this event (larger than a NATS message may be).
    #[error("{0}")]
    TooLarge(String),
}

pub struct Log {
    state: Arc<LogState>,
    io: Arc<Io>,
}

impl Log {
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Appends `events` in order; answers once they are durable (as `--fsync`
    /// says), or refuses all of them when the budget is full.
    pub async fn append(&self, events: &[Arc<PreparedEvent>]) -> Result<(), AppendError> {
        let encoded: Vec<_> = events
            .iter()
            .map(|event| (event.clone(), Encoded::of(event)))
            .collect();
        let size = encoded.iter().map(|(_, e)| e.size()).sum();
        let budget = &self.state.budget;
        if !budget.try_take(size) {
            return Err(AppendError::Full(self.state.name.clone()));
        }
        let (reply, answer) = oneshot::channel();
        let sent = lock(&self.io.sequencer)
            .append(&self.state, encoded, size, reply)
            .map_err(|why| LogError::new(&self.io.path, why));
        let committed = match sent {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(LogError::new(&self.io.path, "the writer has stopped"))),
            Err(error) => Err(error),
        };
        committed.map_err(|error| {
            budget.give_back(size);
            AppendError::Failed(error)
        })
    }

    /// Up to `limit` events from `from` on (numbered ones: stored, or on
    /// their way to the file): from memory when the log's tail still holds
    /// `from`, else from the file.
    pub async fn read(&self, from: u64, limit: usize) -> Result<Vec<Record>, LogError> {
        let end = self.state.end();
        if from >= end {
            return Ok(Vec::new());
        }
        if let Some(records) = self.state.read_tail(from, limit) {
            return Ok(records);
        }
        let io = self.io.clone();
        let id = self.state.id;
        tokio::task::spawn_blocking(move || io.read(id, from, end, limit))
            .await
            .map_err(|e| LogError::new(&self.io.path, e))?
    }

    /// Follows the numbered end (events below it may be read).
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.state.watch_end()
    }

    pub fn end(&self) -> u64 {
        self.state.end()
    }

    pub fn bytes(&self) -> u64 {
        self.state.bytes()
    }

    /// When the event `seq` was appended, if the log still holds it.
    fn appended_at(&self, seq: u64) -> Option<i64> {
        if let Some(record) = self
            .state
            .read_tail(seq, 1)
            .and_then(|r| r.into_iter().next())
        {
            return Some(record.at_ms);
        }
        self.io
            .appended_at(self.state.id, seq)
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read when an event was appended");
                None
            })
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
    checkpointer: Mutex<Option<Checkpointer>>,
    health: Arc<CommitHealth>,
}

impl EventLog {
    /// Why commits fail, while they do (the server is then not ready).
    pub fn failing(&self) -> Option<String> {
        self.health.failing()
    }

    #[cfg(test)]
    pub fn commits_tried(&self) -> u64 {
        self.health.tried()
    }

    /// Opens (or creates) `events.db` in `dir` and starts its writer.
    pub fn open(
        dir: &Path,
        settings: LogSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, LogError> {
        let path = sqlite::path_of(dir);
        let conn = sqlite::open_writer(&path, settings.fsync)?;
        let stored = sqlite::stored_logs(&conn).map_err(|e| LogError::new(&path, e))?;
        let (commands, queue) = mpsc::channel();
        let io = Arc::new(Io {
            path: path.clone(),
            sequencer: Mutex::new(Sequencer::new(commands)),
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
            checkpointer: Mutex::new(None),
            health: Arc::new(CommitHealth::default()),
        });
        let mut known = Vec::new();
        for log in stored {
            let made = event_log.make_log(log.id, log.name.clone(), log.next_seq);
            made.state.stored(log.bytes);
            lock(&io.sequencer).open(made.state.clone(), log.next_seq);
            known.push((made.state.clone(), log.next_seq, log.first_seq));
            lock(&event_log.logs).insert(log.name, made);
        }
        let writer = Writer::new(
            conn,
            path,
            &settings,
            metrics,
            known,
            event_log.cursors.clone(),
            event_log.health.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| LogError::new(&io.path, e))?;
        *lock(&event_log.writer) = Some(thread);
        *lock(&event_log.checkpointer) = Some(Checkpointer::start(&io.path)?);
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
            state: Arc::new(LogState::new(id, name, budget, next_seq)),
            io: self.io.clone(),
        })
    }

    /// The log of a Broker or Channel, created when it has none yet.
    pub fn log(&self, kind: LogKind, namespace: &str, name: &str) -> Result<Arc<Log>, LogError> {
        let name = kind.name(namespace, name);
        let mut logs = lock(&self.logs);
        if let Some(log) = logs.get(&name) {
            return Ok(log.clone());
        }
        let id = self.next_log_id.fetch_add(1, Ordering::AcqRel);
        let log = self.make_log(id, name.clone(), 0);
        {
            let mut sequencer = lock(&self.io.sequencer);
            sequencer
                .send(Command::OpenLog(log.state.clone()))
                .map_err(|_| LogError::new(&self.io.path, "the writer has stopped"))?;
            sequencer.open(log.state.clone(), 0);
        }
        Ok(logs.entry(name).or_insert(log).clone())
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
            tracing::info!(log = %log.name(), "its Broker or Channel is gone; log dropped");
            lock(&self.io.sequencer).close(log.state.id);
            if let Err(error) = self.io.send(Command::DropLog(log.state.clone())) {
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
        // A relay's task opening its cursor again takes the relaying back.
        lock(&self.io.sequencer).detach_consumer(consumer);
        self.io.send(Command::OpenCursor {
            consumer: consumer.to_string(),
            log: log.state.id,
            start,
            reply,
        })?;
        let opened = answer
            .await
            .unwrap_or_else(|_| Err(LogError::new(&self.io.path, "the writer has stopped")))?;
        let cursor = Arc::new(Cursor::new(
            consumer.to_string(),
            log.state.id,
            opened.position,
            opened.retries,
        ));
        lock(&self.cursors).insert(consumer.to_string(), cursor.clone());
        Ok(cursor)
    }

    /// Relays `from`'s new events to `to` in the append calls from now on,
    /// moving `cursor` with them, as the relay is caught up at `at`. Answers,
    /// when it does, what completes once that stops; None when `from` got
    /// events since (or the cursor is no longer its consumer's).
    pub fn attach_relay(
        &self,
        from: &Log,
        to: &Log,
        cursor: Arc<Cursor>,
        at: u64,
    ) -> Option<oneshot::Receiver<()>> {
        // A relay task replaced meanwhile holds a cursor that is no longer
        // its consumer's.
        let current = lock(&self.cursors)
            .get(&cursor.consumer)
            .is_some_and(|known| Arc::ptr_eq(known, &cursor));
        if !current {
            return None;
        }
        let (detached, relayed_until) = oneshot::channel();
        let fanout = Fanout {
            cursor,
            to: to.state.id,
            _detached: detached,
        };
        lock(&self.io.sequencer)
            .attach(from.state.id, at, fanout)
            .then_some(relayed_until)
    }

    /// Drops every cursor not named in `keep`: those consumers are gone.
    pub fn retain_cursors(&self, keep: HashSet<String>) {
        lock(&self.cursors).retain(|name, _| keep.contains(name));
        lock(&self.io.sequencer).retain(&keep);
        if let Err(error) = self.io.send(Command::RetainCursors(keep)) {
            tracing::error!(%error, "could not drop cursors");
        }
    }

    /// Writes every cursor, commits, and stops the writer.
    pub fn close(&self) {
        if let Some(mut checkpointer) = lock(&self.checkpointer).take() {
            checkpointer.stop();
        }
        let _ = self.io.send(Command::Close);
        if let Some(thread) = lock(&self.writer).take()
            && thread.join().is_err()
        {
            tracing::error!("the event log's writer panicked");
        }
    }

    /// How far each consumer lags and what each namespace holds, for metrics.
    pub fn report(&self) -> LogReport {
        let logs: HashMap<i64, Arc<Log>> = lock(&self.logs)
            .values()
            .map(|log| (log.state.id, log.clone()))
            .collect();
        let cursors: Vec<Arc<Cursor>> = lock(&self.cursors).values().cloned().collect();
        let now = now_ms();
        let consumers = cursors
            .iter()
            .filter_map(|cursor| {
                let owner = cursor.owner()?;
                let log = logs.get(&cursor.log_id)?;
                // Events the position passed that wait for a retry are not
                // delivered yet: they count, and may be the oldest.
                let position = cursor.position();
                let waiting = cursor.waiting_below_position();
                let events = log.end().saturating_sub(position) + waiting.len() as u64;
                let oldest = waiting.first().copied().unwrap_or(position);
                let oldest_ms = match events {
                    0 => 0,
                    _ => log.appended_at(oldest).map_or(0, |at| (now - at).max(0)),
                };
                Some(ConsumerLag {
                    kind: owner.kind,
                    namespace: owner.namespace.clone(),
                    name: owner.name.clone(),
                    events,
                    oldest_seconds: oldest_ms as f64 / 1000.0,
                })
            })
            .collect();
        let channel_bytes = logs
            .values()
            .filter_map(|log| {
                let (namespace, channel) = log.name().strip_prefix("channel/")?.split_once('/')?;
                Some((
                    namespace.to_string(),
                    channel.to_string(),
                    log.state.budget.used(),
                ))
            })
            .collect();
        LogReport {
            consumers,
            namespace_bytes: self.namespace_bytes(),
            channel_bytes,
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
