//! The SQLite file behind every log: how it is opened, its tables, and the
//! statements the writer and the readers run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::record::{Encoded, Record, decode};
use crate::config::Fsync;
use crate::mesh::dispatch::RetryDue;

pub const FILE_NAME: &str = "events.db";

/// The event log's file could not be used; names the file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event log {path}: {message}")]
pub struct LogError {
    path: Arc<Path>,
    message: Arc<str>,
}

impl LogError {
    pub fn new(path: &Path, message: impl std::fmt::Display) -> Self {
        Self {
            path: Arc::from(path),
            message: Arc::from(message.to_string()),
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS events (
    log INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    body BLOB NOT NULL,
    trace TEXT,
    PRIMARY KEY (log, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    consumer TEXT PRIMARY KEY,
    log INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS retries (
    consumer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    due INTEGER NOT NULL,
    PRIMARY KEY (consumer, seq)
) WITHOUT ROWID;
";

/// Opens the file for the writer, creating it and its tables if need be.
pub fn open_writer(path: &Path, fsync: Fsync) -> Result<Connection, LogError> {
    let failed = |e: rusqlite::Error| LogError::new(path, e);
    let conn = Connection::open(path).map_err(failed)?;
    // Effective only before the first table exists: freed pages can then be
    // handed back to the file system a few at a time after trims.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
        .map_err(failed)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(LogError::new(path, format!("journal mode {mode}, not WAL")));
    }
    let synchronous = match fsync {
        Fsync::Always => "FULL",
        Fsync::Interval => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA journal_size_limit = 67108864;
         PRAGMA cache_size = -16384;
         PRAGMA busy_timeout = 5000;"
    ))
    .map_err(failed)?;
    conn.execute_batch(SCHEMA).map_err(failed)?;
    Ok(conn)
}

/// A connection for reading events older than a log's in-memory tail.
pub fn open_reader(path: &Path) -> Result<Connection, LogError> {
    let failed = |e: rusqlite::Error| LogError::new(path, e);
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -4096;")
        .map_err(failed)?;
    Ok(conn)
}

/// A log as the file holds it when opened.
pub struct StoredLog {
    pub id: i64,
    pub name: String,
    /// The seq the next append gets: after the last event, and never below a
    /// cursor (events all trimmed must not hand out seqs a cursor passed).
    pub next_seq: u64,
    pub bytes: u64,
}

pub fn stored_logs(conn: &Connection) -> rusqlite::Result<Vec<StoredLog>> {
    let mut statement = conn.prepare(
        "SELECT l.id, l.name,
                MAX(COALESCE((SELECT MAX(seq) + 1 FROM events e WHERE e.log = l.id), 0),
                    COALESCE((SELECT MAX(position) FROM cursors c WHERE c.log = l.id), 0)),
                COALESCE((SELECT SUM(length(body) + COALESCE(length(trace), 0))
                          FROM events e WHERE e.log = l.id), 0)
         FROM logs l",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(StoredLog {
            id: row.get(0)?,
            name: row.get(1)?,
            next_seq: row.get::<_, i64>(2)?.max(0) as u64,
            bytes: row.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

pub fn insert_log(conn: &Connection, id: i64, name: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO logs (id, name) VALUES (?1, ?2)")?
        .execute(params![id, name])?;
    Ok(())
}

pub fn delete_log(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM events WHERE log = ?1", [id])?;
    conn.execute(
        "DELETE FROM retries WHERE consumer IN (SELECT consumer FROM cursors WHERE log = ?1)",
        [id],
    )?;
    conn.execute("DELETE FROM cursors WHERE log = ?1", [id])?;
    conn.execute("DELETE FROM logs WHERE id = ?1", [id])?;
    Ok(())
}

pub fn insert_event(
    conn: &Connection,
    log: i64,
    seq: u64,
    at_ms: i64,
    event: &Encoded,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (log, seq, at, body, trace) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        log,
        seq as i64,
        at_ms,
        &event.body[..],
        event.trace
    ])?;
    Ok(())
}

/// Up to `limit` events of `log` from `from` on, below `end`. An event whose
/// body no longer reads as one is skipped and logged (it was written by this
/// code, so only a damaged file gets there).
pub fn read_events(
    conn: &Connection,
    log: i64,
    from: u64,
    end: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Record>> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, at, body, trace FROM events
         WHERE log = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq LIMIT ?4",
    )?;
    let mut rows = statement.query(params![log, from as i64, end as i64, limit as i64])?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        let seq = row.get::<_, i64>(0)? as u64;
        let at_ms: i64 = row.get(1)?;
        let body = row.get_ref(2)?.as_blob()?;
        let trace: Option<String> = row.get(3)?;
        match decode(body, trace.as_deref()) {
            Ok(event) => records.push(Record {
                seq,
                at_ms,
                event: Arc::new(event),
            }),
            Err(error) => {
                tracing::error!(log, seq, %error, "a stored event does not read back; skipped")
            }
        }
    }
    Ok(records)
}

/// The first seq of `log` appended at or after `at_ms`.
pub fn first_since(conn: &Connection, log: i64, at_ms: i64) -> rusqlite::Result<Option<u64>> {
    conn.query_row(
        "SELECT MIN(seq) FROM events WHERE log = ?1 AND at >= ?2",
        params![log, at_ms],
        |row| row.get::<_, Option<i64>>(0),
    )
    .map(|seq| seq.map(|s| s.max(0) as u64))
}

/// A consumer's cursor: its log and position, if it has one.
pub fn cursor(conn: &Connection, consumer: &str) -> rusqlite::Result<Option<(i64, u64)>> {
    conn.query_row(
        "SELECT log, position FROM cursors WHERE consumer = ?1",
        [consumer],
        |row| Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64)),
    )
    .optional()
}

pub fn set_cursor(
    conn: &Connection,
    consumer: &str,
    log: i64,
    position: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO cursors (consumer, log, position) VALUES (?1, ?2, ?3)
         ON CONFLICT (consumer) DO UPDATE SET log = excluded.log, position = excluded.position",
    )?
    .execute(params![consumer, log, position as i64])?;
    Ok(())
}

pub fn cursor_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT consumer FROM cursors")?;
    let names = statement.query_map([], |row| row.get(0))?;
    names.collect()
}

pub fn delete_cursor(conn: &Connection, consumer: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM cursors WHERE consumer = ?1", [consumer])?;
    set_retries(conn, consumer, &[])
}

/// The events of `consumer` whose delivery waits for a retry.
pub fn retries(conn: &Connection, consumer: &str) -> rusqlite::Result<HashMap<u64, RetryDue>> {
    let mut statement =
        conn.prepare_cached("SELECT seq, failed, due FROM retries WHERE consumer = ?1")?;
    let rows = statement.query_map([consumer], |row| {
        Ok((
            row.get::<_, i64>(0)?.max(0) as u64,
            RetryDue {
                failed: row.get::<_, i64>(1)?.clamp(0, i64::from(u32::MAX)) as u32,
                due_ms: row.get(2)?,
            },
        ))
    })?;
    rows.collect()
}

/// Replaces what the file holds of `consumer`'s retries.
pub fn set_retries(
    conn: &Connection,
    consumer: &str,
    retries: &[(u64, RetryDue)],
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM retries WHERE consumer = ?1")?
        .execute([consumer])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO retries (consumer, seq, failed, due) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (seq, due) in retries {
        insert.execute(params![
            consumer,
            *seq as i64,
            i64::from(due.failed),
            due.due_ms
        ])?;
    }
    Ok(())
}

/// The lowest cursor position on each log that has cursors.
pub fn lowest_cursors(conn: &Connection) -> rusqlite::Result<Vec<(i64, u64)>> {
    let mut statement = conn.prepare("SELECT log, MIN(position) FROM cursors GROUP BY log")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64))
    })?;
    rows.collect()
}

/// Deletes up to `most` events of `log` below `below` appended before
/// `before_ms`; answers the bytes freed.
pub fn trim(
    conn: &Connection,
    log: i64,
    below: u64,
    before_ms: i64,
    most: usize,
) -> rusqlite::Result<u64> {
    let mut statement = conn.prepare_cached(
        "DELETE FROM events WHERE log = ?1 AND seq IN (
             SELECT seq FROM events WHERE log = ?1 AND seq < ?2 AND at < ?3 ORDER BY seq LIMIT ?4)
         RETURNING length(body) + COALESCE(length(trace), 0)",
    )?;
    let freed = statement.query_map(params![log, below as i64, before_ms, most as i64], |row| {
        row.get::<_, i64>(0)
    })?;
    let mut bytes = 0u64;
    for size in freed {
        bytes += size?.max(0) as u64;
    }
    Ok(bytes)
}

/// Hands some free pages back to the file system (auto_vacuum is
/// incremental); the pragma frees a page per step, so it is stepped through.
pub fn vacuum_some(conn: &Connection, pages: u32) -> rusqlite::Result<()> {
    let mut statement = conn.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// The file's path, for error messages.
pub fn path_of(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}
