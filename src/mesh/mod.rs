//! The mesh: controllers that turn resources into wiring and status (and, for the
//! embedded dataplane, into addresses it serves).

pub mod controllers;
