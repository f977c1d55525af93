//! The JetStream event log (`--delivery jetstream`): the same logs and
//! consumers as the embedded log, kept by a NATS JetStream server (or
//! cluster) instead of a file, so that several meshbroker replicas share them.
//!
//! Layout (`names`): one stream per namespace holds that namespace's Brokers
//! (a subject per Broker), and one stream per Application Channel. A stream
//! per log owner is what lets JetStream enforce the disk budgets (`max_bytes`,
//! with `discard: new`, refuses a publish that would go over — 429 at the
//! ingress, never a dropped event) and keeps each namespace's data, limits and
//! replica placement apart; the number of streams grows with namespaces and
//! Applications, not with Brokers or Triggers. Streams keep events while some
//! consumer still wants them: by limits, what every consumer has acknowledged
//! purged every few seconds (`purge`).
//!
//! Each Trigger and each Subscription is a durable pull consumer, named after
//! its object's uid, with explicit acks (`consume`); replicas pulling from one
//! consumer share its events. The dispatcher makes one attempt per
//! JetStream delivery: a failed attempt is answered with a NAK whose delay is
//! the delivery policy's backoff (or the subscriber's `Retry-After`), so the
//! schedule lives in JetStream and survives any replica; the last attempt's
//! failure goes to the dead-letter sink and is acknowledged. A Subscription
//! from a Channel to one of our Brokers gives each of the Broker's Triggers a
//! consumer on the Channel's stream too (see `routing::jetstream`).
//! Publishing (`publish`) stores an event framed, in binary mode (`stored`),
//! and sets `Nats-Msg-Id` from the event's `source` and
//! `id`, so a sender's retry within the stream's duplicate window is stored
//! once.

mod connect;
mod consume;
pub mod names;
mod publish;
mod purge;
pub mod report;
mod stored;
mod streams;

pub use connect::{ConnectError, JetStream};
pub use consume::{PullSettings, pull};
pub use names::ConsumerName;
pub use publish::StreamLog;
pub use streams::{Budgets, StreamSpec, Streams};
