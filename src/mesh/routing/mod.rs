//! The routing table: an immutable snapshot of where events go, built from the
//! watched Applications, Channels, Subscriptions, Brokers, Triggers and
//! instances, and swapped in atomically. No request ever reads the store or
//! takes a lock; requests read the current snapshot. `Router` admits events
//! into the dispatchers it names.
//!
//! Keeping it current is incremental (see `follow`): watches feed `inputs`,
//! which ignores writes that change nothing the table reads, and `build` redoes
//! only the Broker routes whose Broker or Triggers changed (`brokers`), keeping
//! compiled filters per Trigger generation and dispatchers per Trigger. Why a
//! snapshot swapped whole rather than a table changed in place: every event
//! would otherwise wait on a lock the builder holds, or, with routes swapped
//! one by one, could see half a change (a Channel's route naming a Broker
//! route of another build). The snapshot's own maps hold Brokers, Channels and
//! Applications, which are few; the thousands of Triggers live inside their
//! Broker's route, which only their own changes rebuild.

mod brokers;
mod build;
mod consumers;
mod dispatchers;
mod durable;
mod follow;
mod inputs;
mod jetstream;
mod opening;
mod router;
mod running;
mod table;
mod targets;

pub use build::{Builder, DataplaneSettings};
pub use consumers::Embedded;
pub use durable::{Durable, LogHandle, Origin};
pub use follow::follow_resources;
pub use inputs::Inputs;
pub use jetstream::JetStreamConsumers;
pub use opening::{Opening, OpeningGuard};
pub use router::{LocalDelivery, Overloaded, Router};
pub use table::{
    ApplicationRoute, BrokerRoute, ChannelRoute, ChannelSubscriber, ChannelTarget, RoutingTable,
};
