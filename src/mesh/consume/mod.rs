//! Durable delivery's consumers: each reads one log from its own cursor.
//! A Trigger's reads its Broker's log and hands what its filter lets through
//! to its dispatcher; a Subscription's that delivers over HTTP reads its
//! Channel's log the same way, unfiltered; a Subscription to one of our
//! Brokers relays its Channel's log into the Broker's (the hop is durable
//! before the cursor moves). A consumer reads no further than its dispatcher
//! takes, so a slow subscriber lags on disk, holding no one else back and no
//! memory; its cursor moves past an event once its delivery is settled.

mod cursor;
mod feed;
mod relay;

pub use feed::{Feed, feed};
pub use relay::relay;
