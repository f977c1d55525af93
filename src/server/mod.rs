//! Process wiring: the two listeners and their routers, background tasks, and
//! graceful shutdown. Nothing below imports from here.

mod answers;
mod endpoints;
mod leading;
mod run;

pub use run::serve;
