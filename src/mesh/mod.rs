//! The mesh: controllers that turn resources into wiring and status (and, for the
//! embedded dataplane, into addresses it serves), and the dataplane itself. The
//! CloudEvents SQL filter language is the workspace crate `cesql`.

pub mod controllers;
pub mod dataplane;
pub mod dispatch;
pub mod event;
pub mod filter;
pub mod forward;
pub mod ingress;
pub mod routing;
