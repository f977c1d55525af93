//! Counting the events the dataplane has accepted and not yet finished with,
//! so shutdown can wait for it to drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Counts accepted events until they are delivered, dead-lettered or given up on,
/// so shutdown can wait for the dataplane to drain.
#[derive(Clone, Default)]
pub struct InFlight(Arc<InFlightInner>);

#[derive(Default)]
struct InFlightInner {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub fn start(&self) {
        self.0.count.fetch_add(1, Ordering::AcqRel);
    }

    pub fn finish(&self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }

    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    /// Waits until nothing is in flight, or the deadline; returns what is left.
    pub async fn drained(&self, within: Duration) -> usize {
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
    use tokio::time::Instant;

    use super::*;

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
