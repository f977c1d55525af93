//! Folding the write-ahead log back into the file, on a thread of its own:
//! every 25 ms a `PASSIVE` step copies what was committed since the last one
//! and syncs the file, beside the writer and without blocking it. The writer
//! still checkpoints when the write-ahead log passes SQLite's 1,000 pages,
//! which lets it start the log over, but that step then finds almost
//! everything copied already instead of copying megabytes and syncing the
//! whole file while appends wait. (Checkpointing only here, the log could
//! not start over under sustained load: a step rarely finishes between two
//! commits; folding it with `RESTART` when large made appends wait tens of
//! milliseconds, measured.)

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::sqlite::LogError;

const EVERY: Duration = Duration::from_millis(25);

pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Self, LogError> {
        let failed = |e: rusqlite::Error| LogError::new(path, e);
        let conn = Connection::open(path).map_err(failed)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;")
            .map_err(failed)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("event-log-checkpoint".into())
            .spawn(move || run(&conn, &stopping))
            .map_err(|e| LogError::new(path, e))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (the writer folds what is left when it closes).
    pub fn stop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the event log's checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, stop: &(Mutex<bool>, Condvar)) {
    let (stopped, wake) = stop;
    let mut guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let (next, _) = wake
            .wait_timeout(guard, EVERY)
            .unwrap_or_else(|p| p.into_inner());
        guard = next;
        if *guard {
            return;
        }
        if let Err(error) = step(conn) {
            tracing::warn!(%error, "event log checkpoint failed; trying again");
        }
    }
}

fn step(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
