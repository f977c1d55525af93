//! `meshbroker get|apply|delete`: the command line for people, a client of a
//! running server's public resource API only (no back door into its store),
//! in kubectl's manner. Exit codes a script can rely on: 0 done, 1 refused
//! (the server's message on stderr), 2 usage.

mod args;
mod client;
mod commands;
mod kinds;
mod output;

pub use args::ClientCommand;
pub use commands::run;
