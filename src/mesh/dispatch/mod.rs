//! Delivery: every subscriber (a Trigger's, or a Channel subscription's that is not
//! one of our Brokers) has a `Dispatcher` with its own bounded queue and
//! concurrency limit, so one slow or failing subscriber holds back only itself.
//! The transport is `Session`: a keep-alive connection (plain or TLS) per
//! delivery worker; `tls` says whom https:// subscribers are trusted as.
//! A delivery is a POST with `Prefer: reply`, retried per the delivery options,
//! then sent to the dead-letter sink; a reply event re-enters the Broker.

mod delivery;
mod dispatcher;
mod policy;
mod prepared;
mod retry;
mod tls;
mod transport;
pub mod ttl;

use std::sync::Arc;

#[cfg(test)]
pub(crate) use dispatcher::testing;
pub use dispatcher::{
    Budget, DispatchDeps, Dispatcher, DispatcherSettings, ReplyTo, Reservation, Target,
};
pub use policy::DeliveryPolicy;
pub use prepared::PreparedEvent;
pub use tls::client_config;
pub use transport::{Session, TransportError};

/// One of our own Brokers or Channels: a subscriber or reply destination that
/// is handed events in process instead of over HTTP (where it would need a
/// credential and cost a loopback exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Broker { namespace: String, name: String },
    Channel { namespace: String, name: String },
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broker { namespace, name } => write!(f, "Broker {namespace}/{name}"),
            Self::Channel { namespace, name } => write!(f, "Channel {namespace}/{name}"),
        }
    }
}

/// Why a local Broker or Channel did not take an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Full: like a 429, worth retrying.
    Overloaded,
    /// Not in the routing table (deleted, or not ready): like a 404.
    Gone,
}

/// Hands events to our own Brokers and Channels (replies, and subscribers that
/// are one of ours), through the routing table of the moment.
pub trait LocalSink: Send + Sync + 'static {
    fn hand_over(&self, to: &Local, event: Arc<PreparedEvent>) -> Result<(), Refusal>;
}

/// Counts accepted events until they are delivered, dead-lettered or given up on,
/// so shutdown can wait for the dataplane to drain.
#[derive(Clone, Default)]
pub struct InFlight(std::sync::Arc<InFlightInner>);

#[derive(Default)]
pub struct InFlightInner {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    pub fn start(&self) {
        self.0
            .count
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn finish(&self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }

    pub fn count(&self) -> usize {
        self.0.count.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until nothing is in flight, or the deadline; returns what is left.
    pub async fn drained(&self, within: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let idle = self.0.idle.notified();
            if self.count() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.count();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::InFlight;

    fn finish_after(in_flight: &InFlight, delay: Duration) {
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            in_flight.finish();
        });
    }

    #[tokio::test(start_paused = true)]
    async fn drain_returns_as_the_last_event_in_flight_finishes() {
        let in_flight = InFlight::default();
        let start = Instant::now();
        assert_eq!(in_flight.drained(Duration::from_secs(5)).await, 0);
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "nothing in flight: at once"
        );

        for after_ms in [30, 10, 20] {
            in_flight.start();
            finish_after(&in_flight, Duration::from_millis(after_ms));
        }
        assert_eq!(in_flight.drained(Duration::from_secs(5)).await, 0);
        assert_eq!(start.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_at_its_deadline_and_says_what_is_left() {
        let in_flight = InFlight::default();
        for _ in 0..2 {
            in_flight.start();
        }
        finish_after(&in_flight, Duration::from_millis(10));
        let start = Instant::now();
        assert_eq!(in_flight.drained(Duration::from_millis(100)).await, 1);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }
}
