//! The mesh: controllers that turn resources into wiring and status (and, for the
//! embedded dataplane, into addresses it serves), and the CloudEvents SQL filter
//! language Triggers use.

pub mod cesql;
pub mod controllers;
pub mod dispatch;
pub mod event;
pub mod filter;
