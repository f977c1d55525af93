//! Process wiring: configuration (flags, environment, file), the two listeners and
//! their routers, background tasks, and graceful shutdown.

mod answers;
mod config;
mod endpoints;
mod run;
mod state;

pub use config::{Config, DataplaneKind, LogFormat, Settings, StoreKind};
pub use run::serve;
pub use state::{AppState, Shutdown};
