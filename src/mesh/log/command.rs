//! What the writer thread's queue carries: appends already numbered (with
//! their copies for caught-up relays), and the changes to logs and cursors
//! that go into the same commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::cursor::{Cursor, Start};
use super::log_state::LogState;
use super::record::Encoded;
use super::sqlite::LogError;
use crate::mesh::dispatch::RetryDue;

/// A relayed copy of an append: into the Broker log `to`, from `first` on.
pub struct Relayed {
    pub to: Arc<LogState>,
    pub first: u64,
    pub bytes: u64,
    pub cursor: Arc<Cursor>,
    /// Where the relay's cursor stands once the copy is stored.
    pub channel_next: u64,
}

/// A cursor as the file holds it: its position and the retry schedules of
/// the events it was delivering.
#[derive(Default)]
pub struct OpenedCursor {
    pub position: u64,
    pub retries: HashMap<u64, RetryDue>,
}

pub enum Command {
    /// Events numbered from `first` on (see `sequencer`), and their copies
    /// for caught-up relays.
    Append {
        log: i64,
        first: u64,
        /// When they were appended (their records' `at_ms`): what the file
        /// keeps as their time, so a replay from a time or retention reads
        /// the same time from memory and from the file.
        at_ms: i64,
        encoded: Vec<Encoded>,
        size: u64,
        relayed: Vec<Relayed>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    OpenLog(Arc<LogState>),
    DropLog(Arc<LogState>),
    OpenCursor {
        consumer: String,
        log: i64,
        start: Start,
        reply: oneshot::Sender<Result<OpenedCursor, LogError>>,
    },
    RetainCursors(HashSet<String>),
    Close,
}
