//! The command line for people, a client of a running server's public APIs
//! only (no back door into its store): kubectl's `get|apply|delete` over the
//! resource API, svcat's `classes|provision|deprovision|instances` over OSB,
//! `send` to the events listener, `tail` of a Broker and `trigger create`. Exit codes a script can rely on: 0 done, 1 refused
//! (the server's message on stderr), 2 usage.

mod args;
mod catalog;
mod client;
mod commands;
mod contexts;
mod describe;
mod events;
mod failure;
mod kinds;
mod output;
mod triggers;

pub use args::ClientCommand;
pub use commands::run;
