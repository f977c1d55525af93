//! The embedded backend: objects as JSON rows in SQLite (one file in the data
//! directory), a global revision as resourceVersion, and an in-memory change log
//! that watches replay from and follow.

mod changes;
mod sqlite;

pub use sqlite::EmbeddedStore;
