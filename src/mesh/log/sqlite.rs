//! The SQLite file behind every log: how it is opened, its tables, and the
//! statements the writer and the readers run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::record::{Batch, Encoded, Record, decode_batch};
use crate::config::Fsync;
use crate::files::private_database;
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

/// The layout `PRAGMA user_version` names. Version 0 with an `events` table
/// is the first layout (a row per event), migrated when opened. Layout 3 adds
/// no table: its cursors may have passed events that wait for a retry (kept
/// by their `retries` rows), which a meshbroker of layout 2 would trim and
/// never deliver; its `cursors_by_log` index serves the trim that keeps them.
const LAYOUT: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    log INTEGER NOT NULL,
    first INTEGER NOT NULL,
    count INTEGER NOT NULL,
    at INTEGER NOT NULL,
    size INTEGER NOT NULL,
    events BLOB NOT NULL,
    traces TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS batches_in_order ON batches (log, first);
CREATE INDEX IF NOT EXISTS batches_by_time ON batches (log, at);
CREATE TABLE IF NOT EXISTS cursors (
    consumer TEXT PRIMARY KEY,
    log INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cursors_by_log ON cursors (log);
CREATE TABLE IF NOT EXISTS retries (
    consumer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    due INTEGER NOT NULL,
    PRIMARY KEY (consumer, seq)
) WITHOUT ROWID;
";

/// Creates the tables, or brings a file of the first layout to this one
/// (each stored event becomes a batch of one), in one transaction.
fn lay_out(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == LAYOUT {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let first_layout = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    tx.execute_batch(SCHEMA)?;
    if first_layout {
        migrate_events(&tx)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {LAYOUT};"))?;
    tx.commit()
}

fn migrate_events(tx: &Connection) -> rusqlite::Result<()> {
    {
        let mut rows =
            tx.prepare("SELECT log, seq, at, body, trace FROM events ORDER BY log, seq")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let encoded = Encoded {
                body: bytes::Bytes::copy_from_slice(row.get_ref(3)?.as_blob()?),
                trace: row.get(4)?,
            };
            let size = encoded.size();
            let batch = Batch::of(std::iter::once(&encoded));
            insert_batch(
                tx,
                row.get(0)?,
                row.get::<_, i64>(1)?.max(0) as u64,
                1,
                row.get(2)?,
                size,
                &batch,
            )?;
        }
    }
    tx.execute_batch("DROP TABLE events;")
}

/// Opens the file for the writer, creating it and its tables if need be.
pub fn open_writer(path: &Path, fsync: Fsync) -> Result<Connection, LogError> {
    let failed = |e: rusqlite::Error| LogError::new(path, e);
    // Events are what tenants sent: only meshbroker's user may read them.
    private_database(path).map_err(|e| LogError::new(path, e))?;
    let conn = Connection::open(path).map_err(failed)?;
    // Before anything is written to it: the pragmas below would change a
    // database that is not ours.
    check_is_event_log(&conn).map_err(|e| LogError::new(path, e))?;
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
    let mut conn = conn;
    lay_out(&mut conn).map_err(failed)?;
    Ok(conn)
}

/// The tables any layout of the event log has had.
const LOG_TABLES: [&str; 5] = ["logs", "batches", "cursors", "retries", "events"];

/// Refuses a file that is no event log this version may lay out: one a
/// newer meshbroker laid out (its layout is unknown here), or a database of
/// something else (a table no layout has). Only an empty file is laid out
/// fresh.
fn check_is_event_log(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if version > LAYOUT {
        return Err(format!(
            "laid out by a newer meshbroker (layout {version}; this one reads layouts up to {LAYOUT})"
        ));
    }
    let mut statement = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .map_err(|e| e.to_string())?;
    let tables: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    let foreign: Vec<&str> = tables
        .iter()
        .map(String::as_str)
        .filter(|table| !LOG_TABLES.contains(table))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not an event log: it holds tables no event log has ({})",
            foreign.join(", ")
        ))
    }
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
    /// The first event it still holds (`next_seq` when none).
    pub first_seq: u64,
    pub bytes: u64,
}

pub fn stored_logs(conn: &Connection) -> rusqlite::Result<Vec<StoredLog>> {
    let mut statement = conn.prepare(
        "SELECT l.id, l.name,
                COALESCE((SELECT SUM(size) FROM batches b WHERE b.log = l.id), 0),
                MAX(COALESCE((SELECT first + count FROM batches b WHERE b.log = l.id
                              ORDER BY first DESC LIMIT 1), 0),
                    COALESCE((SELECT MAX(position) FROM cursors c WHERE c.log = l.id), 0)),
                (SELECT first FROM batches b WHERE b.log = l.id ORDER BY first LIMIT 1)
         FROM logs l",
    )?;
    let rows = statement.query_map([], |row| {
        let next_seq = row.get::<_, i64>(3)?.max(0) as u64;
        Ok(StoredLog {
            id: row.get(0)?,
            name: row.get(1)?,
            bytes: row.get::<_, i64>(2)?.max(0) as u64,
            next_seq,
            first_seq: row
                .get::<_, Option<i64>>(4)?
                .map_or(next_seq, |first| first.max(0) as u64),
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
    conn.execute("DELETE FROM batches WHERE log = ?1", [id])?;
    conn.execute(
        "DELETE FROM retries WHERE consumer IN (SELECT consumer FROM cursors WHERE log = ?1)",
        [id],
    )?;
    conn.execute("DELETE FROM cursors WHERE log = ?1", [id])?;
    conn.execute("DELETE FROM logs WHERE id = ?1", [id])?;
    Ok(())
}

/// A batch of `count` events of `log` from `first` on, `size` bytes as
/// budgets count them.
pub fn insert_batch(
    conn: &Connection,
    log: i64,
    first: u64,
    count: usize,
    at_ms: i64,
    size: u64,
    batch: &Batch,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO batches (log, first, count, at, size, events, traces)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        log,
        first as i64,
        count as i64,
        at_ms,
        size as i64,
        &batch.events[..],
        batch.traces
    ])?;
    Ok(())
}

/// Up to about `limit` events of `log` from `from` on, below `end` (whole
/// batches are read, so a few more may come). A batch that no longer reads
/// is skipped and logged (it was written by this code, so only a damaged
/// file gets there).
pub fn read_events(
    conn: &Connection,
    log: i64,
    from: u64,
    end: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Record>> {
    let mut statement = conn.prepare_cached(
        "SELECT first, at, events, traces FROM batches
         WHERE log = ?1 AND first < ?3
           AND first >= COALESCE((SELECT MAX(first) FROM batches WHERE log = ?1 AND first <= ?2), 0)
         ORDER BY first",
    )?;
    let mut rows = statement.query(params![log, from as i64, end as i64])?;
    let mut records = Vec::new();
    while records.len() < limit
        && let Some(row) = rows.next()?
    {
        let first = row.get::<_, i64>(0)?.max(0) as u64;
        let at_ms: i64 = row.get(1)?;
        let events = row.get_ref(2)?.as_blob()?;
        let traces = row.get_ref(3)?.as_str_or_null()?;
        let start = first.max(from);
        let wanted = (end.saturating_sub(start) as usize).min(limit - records.len());
        let skip = (start - first) as usize;
        match decode_batch(events, traces, skip, wanted) {
            Ok(events) => records.extend((start..).zip(events).map(|(seq, event)| Record {
                seq,
                at_ms,
                event: Arc::new(event),
            })),
            Err(error) => {
                tracing::error!(log, first, %error, "a stored batch does not read back; skipped")
            }
        }
    }
    Ok(records)
}

/// When the event `seq` of `log` was appended, if the log holds it.
pub fn appended_at(conn: &Connection, log: i64, seq: u64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT at FROM batches WHERE log = ?1 AND first <= ?2 AND first + count > ?2
         ORDER BY first DESC LIMIT 1",
    )?
    .query_row(params![log, seq as i64], |row| row.get(0))
    .optional()
}

/// The first seq of `log` appended at or after `at_ms`.
pub fn first_since(conn: &Connection, log: i64, at_ms: i64) -> rusqlite::Result<Option<u64>> {
    conn.query_row(
        "SELECT first FROM batches WHERE log = ?1 AND at >= ?2 ORDER BY at LIMIT 1",
        params![log, at_ms],
        |row| row.get::<_, i64>(0),
    )
    .optional()
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

/// Deletes up to `most` batches of `log` whose events are all below
/// `below` — but not one holding an event a consumer on the log waits to
/// retry (its cursor passed it, see `Cursor`); answers the bytes freed and
/// the first seq the log then holds (None when nothing was deleted).
pub fn trim(
    conn: &Connection,
    log: i64,
    below: u64,
    most: usize,
) -> rusqlite::Result<(u64, Option<u64>)> {
    let waiting: Vec<i64> = conn
        .prepare_cached(
            "SELECT r.seq FROM retries r JOIN cursors c ON c.consumer = r.consumer
             WHERE c.log = ?1 AND r.seq < ?2",
        )?
        .query_map(params![log, below as i64], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let freed = if waiting.is_empty() {
        delete_batches(
            conn,
            "DELETE FROM batches WHERE id IN (
                 SELECT id FROM batches WHERE log = ?1 AND first < ?2 AND first + count <= ?2
                 ORDER BY first LIMIT ?3)
             RETURNING size, first + count",
            params![log, below as i64, most as i64],
        )?
    } else {
        // The few events that wait, as one JSON array: every batch is
        // checked against them without a query of its own.
        let waiting = serde_json::to_string(&waiting).unwrap_or_else(|_| "[]".into());
        delete_batches(
            conn,
            "DELETE FROM batches WHERE id IN (
                 SELECT id FROM batches b WHERE log = ?1 AND first < ?2 AND first + count <= ?2
                   AND NOT EXISTS (SELECT 1 FROM json_each(?4) w
                                   WHERE w.value >= b.first AND w.value < b.first + b.count)
                 ORDER BY first LIMIT ?3)
             RETURNING size, first + count",
            params![log, below as i64, most as i64, waiting],
        )?
    };
    let Some(deleted_to) = freed.1 else {
        return Ok((0, None));
    };
    // A batch kept for a retry may lie below what was deleted.
    let first: Option<i64> = conn
        .prepare_cached("SELECT MIN(first) FROM batches WHERE log = ?1")?
        .query_row([log], |row| row.get(0))?;
    let held_from = first.map_or(deleted_to, |first| (first.max(0) as u64).min(deleted_to));
    Ok((freed.0, Some(held_from)))
}

/// Runs a `DELETE … RETURNING size, first + count`: the bytes freed and the
/// end of the last batch deleted (None when none was).
fn delete_batches(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<(u64, Option<u64>)> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
    })?;
    let (mut bytes, mut deleted_to) = (0u64, None);
    for row in rows {
        let (size, end) = row?;
        bytes += size.max(0) as u64;
        deleted_to = deleted_to.max(Some(end.max(0) as u64));
    }
    Ok((bytes, deleted_to))
}

/// A write that changes nothing, so that a commit holding it succeeds only
/// if the file can take a write (a full disk refuses it).
pub fn probe_write(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE logs SET name = name WHERE id = (SELECT MIN(id) FROM logs)",
        [],
    )?;
    Ok(())
}

/// Pages the file holds unused.
pub fn free_pages(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("PRAGMA freelist_count", [], |row| row.get::<_, i64>(0))
        .map(|pages| pages.max(0) as u64)
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
