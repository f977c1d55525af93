//! Durable delivery's consumers: each has its own cursor on one log.
//! A Broker's Triggers are served by one shared reader of the Broker's log
//! that hands each event to the Triggers whose filters let it through, and a
//! Trigger that is behind (new, replaying, or slow) reads on its own until it
//! catches up (`shared`); a Subscription's that delivers over HTTP reads its
//! Channel's log into its dispatcher, unfiltered (`feed`); a Subscription to one of our
//! Brokers relays its Channel's log into the Broker's (the hop is durable
//! before the cursor moves). A consumer reads no further than its dispatcher
//! takes, so a slow subscriber lags on disk, holding no one else back and no
//! memory; its cursor moves past an event once its delivery is settled.

mod cursor;
mod feed;
mod relay;
mod shared;

pub use feed::{Feed, feed};
pub use relay::relay;
pub use shared::{Group, Member, Solo, read_shared, trigger};
