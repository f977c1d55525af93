//! Process wiring: the two listeners and their routers, background tasks, and
//! graceful shutdown. Nothing below imports from here.

mod answers;
mod authority;
mod connections;
mod endpoints;
mod ingress_runtime;
mod leading;
mod linger;
mod run;
mod stall;
mod tls;

pub use run::serve;
