//! Delivery: every subscriber (a Trigger's, or a Channel subscription's that is not
//! one of our Brokers) has a `Dispatcher` with its own bounded queue and
//! concurrency limit, so one slow or failing subscriber holds back only itself.
//! The transport is `Session`: a keep-alive connection (plain or TLS) per
//! delivery worker; `tls` says whom https:// subscribers are trusted as.
//! A delivery is a POST with `Prefer: reply`, retried per the delivery options,
//! then sent to the dead-letter sink; a reply event re-enters the Broker.
//!
//! `dispatcher` (queue and workers) runs `delivery` (attempts, replies, the
//! dead-letter sink); what both read lives beneath them: `target` (where and how
//! to deliver), `deps` (what every dispatcher shares), `local` (our own Brokers
//! and Channels as destinations), `budget` (what queued events may hold in
//! memory), `in_flight` (the drain counter) and `settle` (how a durable
//! consumer hears how its deliveries go).

mod budget;
mod delivery;
mod deps;
mod dispatcher;
mod in_flight;
mod local;
mod policy;
mod retry;
mod settle;
mod target;
mod tls;
mod transport;
pub mod ttl;

pub use budget::{Budget, BudgetLimits};
pub use deps::DispatchDeps;
#[cfg(test)]
pub(crate) use dispatcher::testing;
pub use dispatcher::{Counts, Dispatcher, DispatcherSettings, Reservation};
pub use in_flight::InFlight;
pub use local::{Local, LocalSink, Refusal};
pub use policy::DeliveryPolicy;
pub use retry::RetryDue;
pub use settle::{RetryBy, Settle, Settled};
pub use target::{ReplyTo, Target};
pub use tls::client_config;
pub use transport::{Session, TransportError};
