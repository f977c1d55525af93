//! The durable event log (`--delivery durable`): one append-only log per
//! ingress point (each Broker and each Channel), all in one SQLite file,
//! `events.db` in the data directory, and a durable cursor per consumer (a
//! Trigger or a Subscription), so a slow consumer lags on disk without holding
//! anyone back and without a copy of the events per consumer.
//!
//! An append numbers its events and puts them in their log's in-memory tail
//! itself (`sequencer`), so consumers see them at once. One writer thread
//! owns the file (`writer`): every append, cursor move and trim goes through
//! it, and what arrived while it committed goes into the next commit, so one
//! fsync covers many requests (group commit). An append is answered once the
//! commit that holds it is on disk. Readers take recent events from each
//! log's in-memory tail and older ones from the file (`logs`); the tail lets
//! go only of what the file holds. Each commit stores a log's new events as
//! one row, a batch (`record`): a row per event cost SQLite a b-tree insert and, on trim, a
//! page rewrite per event, and held the dataplane to half the speed it has
//! with batches (issue 12's note has the figures). A log keeps a batch until
//! every cursor on it has passed all its events (and, with a retention set,
//! for that long); trims go a few batches per commit so they never hold
//! appends up for long. Each namespace's Brokers and each
//! Channel have a disk budget (`budget`), and an append that would go over it
//! is refused, never dropped later.
//!
//! Why SQLite: measured against redb and fjall (issue 12's note), it commits
//! as fast at the batch sizes group commit produces, reopens in a millisecond
//! where the others took up to 0.8 s, adds no dependency, and keeps events,
//! cursors and trims in one transaction. A crash loses nothing committed: a
//! torn write-ahead log tail is cut at the last whole commit when the file is
//! opened again (SQLite's own recovery). The write-ahead log is folded into
//! the file on a thread of its own (`checkpoint`), never inside a commit.

mod budget;
mod checkpoint;
mod command;
mod cursor;
mod fanout;
mod log_state;
mod logs;
mod record;
mod sequencer;
mod settings;
mod sqlite;
mod writer;

pub use budget::DiskBudget;
pub use cursor::{Cursor, Owner, Start};
pub use logs::{AppendError, EventLog, Log, LogKind};
pub use record::Record;
pub use settings::LogSettings;
pub use sqlite::{FILE_NAME, LogError};
pub use writer::CommitHealth;

#[cfg(test)]
mod tests;
