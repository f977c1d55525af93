//! The event log's writer thread (src/mesh/log/writer.rs) on each candidate
//! storage engine: every commit stores one batch row of K events for each of
//! two logs (an Application's Channel and its namespace's Broker), moves two
//! cursors, trims the rows every cursor has passed (a log keeps its last
//! `KEPT` rows, as a subscriber a little behind would), and is durable
//! before the next one starts — SQLite in WAL mode with `synchronous = FULL`
//! and a checkpoint thread beside it (the broker's settings), redb with
//! `Durability::Immediate`, fjall with its journal synced on each batch.
//!
//! Printed per engine and batch size: commits and events a second from one
//! writer, the process's CPU an event (background threads included), commit
//! latency, and what the process wrote to the disk an event.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A structured CloudEvent with a 1 KiB binary payload, about the size the
/// dataplane benchmark's events are stored at.
const EVENT_BYTES: usize = 1_300;
/// Rows each log keeps behind its cursors.
const KEPT: u64 = 50;
const LOGS: [u64; 2] = [1, 2];
const WARM_UP: u64 = 200;

/// What one commit of the writer holds.
struct Commit<'a> {
    /// Per log: the first event's number and the batch row.
    appends: Vec<(u64, u64, &'a [u8])>,
    /// Per cursor: its id and position.
    cursors: Vec<(u64, u64)>,
    /// Rows to drop: log and first event's number.
    trims: Vec<(u64, u64)>,
}

trait Engine {
    fn commit(&mut self, work: &Commit) -> Result<()>;
}

struct Sqlite {
    conn: rusqlite::Connection,
    checkpointing: Arc<AtomicBool>,
    checkpointer: Option<JoinHandle<()>>,
}

impl Sqlite {
    fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("events.db");
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA journal_size_limit = 67108864;
             PRAGMA cache_size = -16384;
             CREATE TABLE batches (
                 id INTEGER PRIMARY KEY, log INTEGER NOT NULL, first INTEGER NOT NULL,
                 count INTEGER NOT NULL, at INTEGER NOT NULL, size INTEGER NOT NULL,
                 events BLOB NOT NULL, UNIQUE (log, first));
             CREATE INDEX batches_by_time ON batches (log, at);
             CREATE TABLE cursors (consumer INTEGER PRIMARY KEY, position INTEGER NOT NULL);",
        )?;
        // As the broker does: a PASSIVE step every 25 ms on a thread of its own.
        let checkpointing = Arc::new(AtomicBool::new(true));
        let running = checkpointing.clone();
        let folding = rusqlite::Connection::open(&path)?;
        folding.execute_batch("PRAGMA synchronous = NORMAL;")?;
        let checkpointer = std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                let _ = folding.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        Ok(Self {
            conn,
            checkpointing,
            checkpointer: Some(checkpointer),
        })
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.checkpointing.store(false, Ordering::Relaxed);
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

impl Engine for Sqlite {
    fn commit(&mut self, work: &Commit) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (log, first, row) in &work.appends {
            tx.prepare_cached(
                "INSERT INTO batches (log, first, count, at, size, events)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            )?
            .execute(rusqlite::params![
                *log as i64,
                *first as i64,
                (row.len() / EVENT_BYTES) as i64,
                row.len() as i64,
                row
            ])?;
        }
        for (cursor, position) in &work.cursors {
            tx.prepare_cached(
                "INSERT INTO cursors (consumer, position) VALUES (?1, ?2)
                 ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            )?
            .execute(rusqlite::params![*cursor as i64, *position as i64])?;
        }
        for (log, first) in &work.trims {
            tx.prepare_cached("DELETE FROM batches WHERE log = ?1 AND first = ?2")?
                .execute(rusqlite::params![*log as i64, *first as i64])?;
        }
        tx.commit()?;
        Ok(())
    }
}

const BATCHES: redb::TableDefinition<(u64, u64), &[u8]> = redb::TableDefinition::new("batches");
const CURSORS: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("cursors");

struct Redb(redb::Database);

impl Engine for Redb {
    fn commit(&mut self, work: &Commit) -> Result<()> {
        let mut tx = self.0.begin_write()?;
        tx.set_durability(redb::Durability::Immediate)?;
        {
            let mut batches = tx.open_table(BATCHES)?;
            for (log, first, row) in &work.appends {
                batches.insert((*log, *first), *row)?;
            }
            for (log, first) in &work.trims {
                batches.remove((*log, *first))?;
            }
            let mut cursors = tx.open_table(CURSORS)?;
            for (cursor, position) in &work.cursors {
                cursors.insert(*cursor, *position)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

struct Fjall {
    db: fjall::Database,
    batches: fjall::Keyspace,
    cursors: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> Result<Self> {
        let db = fjall::Database::builder(dir.join("fjall")).open()?;
        let batches = db.keyspace("batches", fjall::KeyspaceCreateOptions::default)?;
        let cursors = db.keyspace("cursors", fjall::KeyspaceCreateOptions::default)?;
        Ok(Self {
            db,
            batches,
            cursors,
        })
    }
}

fn key(log: u64, first: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&log.to_be_bytes());
    key[8..].copy_from_slice(&first.to_be_bytes());
    key
}

impl Engine for Fjall {
    fn commit(&mut self, work: &Commit) -> Result<()> {
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for (log, first, row) in &work.appends {
            batch.insert(&self.batches, key(*log, *first), *row);
        }
        for (log, first) in &work.trims {
            batch.remove(&self.batches, key(*log, *first));
        }
        for (cursor, position) in &work.cursors {
            batch.insert(&self.cursors, cursor.to_be_bytes(), position.to_be_bytes());
        }
        batch.commit()?;
        Ok(())
    }
}

/// The process's CPU time (every thread) and the bytes it wrote to storage.
fn usage() -> Result<(Duration, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name's closing parenthesis; utime and stime
    // are the 14th and 15th of the whole line.
    let after = stat.rsplit_once(')').ok_or("no /proc/self/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let io = std::fs::read_to_string("/proc/self/io")?;
    let written = io
        .lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .ok_or("no write_bytes in /proc/self/io")?
        .trim()
        .parse()?;
    // USER_HZ is 100 on Linux.
    Ok((Duration::from_millis(ticks * 10), written))
}

/// Events that compress as stored ones do: JSON around base64 of noise.
fn row_of(events: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut row = Vec::with_capacity(events * EVENT_BYTES);
    for _ in 0..events {
        let head = br#"{"specversion":"1.0","id":"bench-1","source":"/bench","type":"bench.event","datacontenttype":"application/octet-stream","data_base64":""#;
        row.extend_from_slice(head);
        while row.len() % EVENT_BYTES < EVENT_BYTES - 2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            row.push(alphabet[(state % 64) as usize]);
        }
        row.extend_from_slice(b"\"}");
    }
    row
}

struct Figures {
    commits_per_s: f64,
    events_per_s: f64,
    cpu_us_per_event: f64,
    p50_ms: f64,
    p99_ms: f64,
    disk_bytes_per_event: f64,
}

/// Commits back to back for `seconds` after a warm-up, K events a log each.
fn run(engine: &mut dyn Engine, events: usize, seconds: f64) -> Result<Figures> {
    let row = row_of(events);
    let mut next = 0u64;
    let commit = |engine: &mut dyn Engine, n: u64| -> Result<Duration> {
        let first = n * events as u64;
        let work = Commit {
            appends: LOGS.iter().map(|log| (*log, first, &row[..])).collect(),
            cursors: LOGS.iter().map(|log| (*log, first)).collect(),
            trims: match n.checked_sub(KEPT) {
                Some(old) => LOGS.iter().map(|log| (*log, old * events as u64)).collect(),
                None => Vec::new(),
            },
        };
        let started = Instant::now();
        engine.commit(&work)?;
        Ok(started.elapsed())
    };
    for _ in 0..WARM_UP {
        commit(engine, next)?;
        next += 1;
    }
    let (cpu_before, written_before) = usage()?;
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        latencies.push(commit(engine, next)?);
        next += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu_after, written_after) = usage()?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let stored = (latencies.len() * events * LOGS.len()) as f64;
    Ok(Figures {
        commits_per_s: latencies.len() as f64 / elapsed,
        events_per_s: stored / elapsed,
        cpu_us_per_event: (cpu_after - cpu_before).as_secs_f64() * 1e6 / stored,
        p50_ms: at(0.5).as_secs_f64() * 1e3,
        p99_ms: at(0.99).as_secs_f64() * 1e3,
        disk_bytes_per_event: (written_after - written_before) as f64 / stored,
    })
}

fn open(engine: &str, dir: &Path) -> Result<Box<dyn Engine>> {
    Ok(match engine {
        "sqlite" => Box::new(Sqlite::open(dir)?),
        "redb" => Box::new(Redb(redb::Database::create(dir.join("events.redb"))?)),
        "fjall" => Box::new(Fjall::open(dir)?),
        other => return Err(format!("no engine {other}").into()),
    })
}

fn main() -> Result<()> {
    let seconds: f64 = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 4.0,
    };
    let scratch = std::env::var_os("ENGINES_DIR").map_or_else(std::env::temp_dir, Into::into);
    println!(
        "| engine | events a log a commit | commits/s | events/s | CPU µs an event | commit p50 / p99 ms | disk bytes an event |"
    );
    println!("|---|---|---|---|---|---|---|");
    for events in [1, 8, 64] {
        for name in ["sqlite", "redb", "fjall"] {
            let dir = tempfile::tempdir_in(&scratch)?;
            let mut engine = open(name, dir.path())?;
            let f = run(engine.as_mut(), events, seconds)?;
            drop(engine);
            println!(
                "| {name} | {events} | {:.0} | {:.0} | {:.1} | {:.2} / {:.2} | {:.0} |",
                f.commits_per_s,
                f.events_per_s,
                f.cpu_us_per_event,
                f.p50_ms,
                f.p99_ms,
                f.disk_bytes_per_event
            );
        }
    }
    Ok(())
}
