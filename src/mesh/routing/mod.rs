//! The routing table: an immutable snapshot of where events go, built from the
//! watched Applications, Channels, Subscriptions, Brokers, Triggers and instances,
//! and swapped in atomically. No request ever reads the store; requests read the
//! current snapshot. `Router` admits events into the dispatchers it names.

mod build;
mod follow;
mod router;
mod table;

pub use build::{Builder, DataplaneSettings};
pub use follow::follow_resources;
pub use router::{LocalDelivery, Overloaded, Router};
pub use table::{
    ApplicationRoute, BrokerRoute, ChannelRoute, ChannelSubscriber, ChannelTarget, RoutingTable,
};
