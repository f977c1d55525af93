//! What events may hold in memory while they wait or are in delivery: a
//! namespace's `Budget` (events and bytes across its subscribers) and a
//! subscriber's `QueueBytes` (the bytes in its own queue and deliveries).
//!
//! An event's size is counted when it is committed to a queue, so admission
//! is soft: a queue or budget below its byte limit takes the next event
//! whatever its size, one at or over it takes none. Counting events alone let
//! a queue of 1,000 one-MiB events hold a GiB for each subscriber.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::in_flight::InFlight;

/// How many events, and how many bytes of them, a namespace may have waiting
/// or in delivery across all of its subscribers at once.
#[derive(Debug, Clone, Copy)]
pub struct BudgetLimits {
    pub events: usize,
    pub bytes: usize,
}

impl BudgetLimits {
    /// Durable delivery keeps the backlog on disk, under disk budgets; a
    /// dispatcher's queue is all it holds in memory.
    pub const NONE: Self = Self {
        events: usize::MAX,
        bytes: usize::MAX,
    };
}

/// A namespace's share of the dataplane, within its `BudgetLimits`.
pub struct Budget {
    limits: BudgetLimits,
    used: AtomicUsize,
    used_bytes: AtomicUsize,
}

impl Budget {
    pub fn new(limits: BudgetLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            used: AtomicUsize::new(0),
            used_bytes: AtomicUsize::new(0),
        })
    }

    pub(super) fn try_claim(
        self: &Arc<Self>,
        queue: &Arc<QueueBytes>,
        in_flight: &InFlight,
    ) -> Option<Claim> {
        if self.used_bytes.load(Ordering::Acquire) >= self.limits.bytes {
            return None;
        }
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            if used >= self.limits.events {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => used = actual,
            }
        }
        in_flight.start();
        Some(Claim {
            budget: self.clone(),
            queue: queue.clone(),
            in_flight: in_flight.clone(),
            bytes: 0,
        })
    }
}

#[cfg(test)]
impl Budget {
    /// A budget of events alone.
    pub fn of_events(events: usize) -> Arc<Self> {
        Self::new(BudgetLimits {
            events,
            bytes: usize::MAX,
        })
    }
}

/// The bytes of one subscriber's queued and in-delivery events.
pub struct QueueBytes {
    limit: usize,
    held: AtomicUsize,
    /// The largest event it has taken: how a consumer that asks for several
    /// events at once, before it sees them, keeps within the limit.
    largest: AtomicUsize,
    /// Told when the queue falls below its limit.
    room: Notify,
}

impl QueueBytes {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
            room: Notify::new(),
        })
    }

    pub fn has_room(&self) -> bool {
        self.held.load(Ordering::Acquire) < self.limit
    }

    /// Whether `events` more, each as large as the largest so far, would fit.
    pub fn has_room_for(&self, events: usize) -> bool {
        let largest = self.largest.load(Ordering::Relaxed);
        self.held
            .load(Ordering::Acquire)
            .saturating_add(largest.saturating_mul(events))
            <= self.limit
    }

    /// Returns once the queue is below its limit.
    pub async fn room(&self) {
        loop {
            let told = self.room.notified();
            tokio::pin!(told);
            // Registered before looking, so a release in between is not missed.
            told.as_mut().enable();
            if self.has_room() {
                return;
            }
            told.await;
        }
    }

    fn add(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::AcqRel);
        self.largest.fetch_max(bytes, Ordering::Relaxed);
    }

    fn release(&self, bytes: usize) {
        let before = self.held.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.limit && before - bytes < self.limit {
            self.room.notify_waiters();
        }
    }
}

/// One event's hold on its namespace's budget, its subscriber's queue bytes
/// and the drain counter; released when the delivery (retries and
/// dead-lettering included) is over.
pub struct Claim {
    budget: Arc<Budget>,
    queue: Arc<QueueBytes>,
    in_flight: InFlight,
    bytes: usize,
}

impl Claim {
    /// Counts the committed event's size.
    pub(super) fn charge(&mut self, bytes: usize) {
        self.bytes = bytes;
        self.budget.used_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.queue.add(bytes);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(1, Ordering::AcqRel);
        self.budget
            .used_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
        self.queue.release(self.bytes);
        self.in_flight.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn claim(budget: &Arc<Budget>, queue: &Arc<QueueBytes>, bytes: usize) -> Option<Claim> {
        let mut claim = budget.try_claim(queue, &InFlight::default())?;
        claim.charge(bytes);
        Some(claim)
    }

    #[test]
    fn a_budget_below_its_byte_limit_takes_any_event_and_one_at_it_takes_none() {
        let budget = Budget::new(BudgetLimits {
            events: 100,
            bytes: 1000,
        });
        let queue = QueueBytes::new(usize::MAX);
        let big = claim(&budget, &queue, 999).expect("below the limit");
        let over = claim(&budget, &queue, 5000).expect("999 < 1000: still room");
        assert!(claim(&budget, &queue, 1).is_none(), "5,999 bytes held");
        drop(over);
        assert!(claim(&budget, &queue, 1).is_some(), "999 bytes held again");
        drop(big);
        let events: Vec<_> = (0..100)
            .map(|_| claim(&budget, &queue, 0).expect("room by count"))
            .collect();
        assert!(claim(&budget, &queue, 0).is_none(), "100 events held");
        drop(events);
        assert!(claim(&budget, &queue, 0).is_some());
    }

    #[test]
    fn room_for_several_counts_each_as_the_largest_seen() {
        let queue = QueueBytes::new(1000);
        let budget = Budget::new(BudgetLimits {
            events: 100,
            bytes: usize::MAX,
        });
        assert!(queue.has_room_for(128), "nothing seen yet");
        let first = claim(&budget, &queue, 300).expect("room");
        assert!(queue.has_room_for(2), "300 + 2 × 300 ≤ 1000");
        assert!(!queue.has_room_for(3), "300 + 3 × 300 > 1000");
        drop(first);
        assert!(queue.has_room_for(3), "nothing held: 3 × 300 ≤ 1000");
        assert!(!queue.has_room_for(4), "the largest is remembered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_wakes_its_waiter_when_it_falls_below_the_limit() {
        let queue = QueueBytes::new(100);
        let budget = Budget::new(BudgetLimits {
            events: 100,
            bytes: usize::MAX,
        });
        let first = claim(&budget, &queue, 60).expect("room");
        let second = claim(&budget, &queue, 60).expect("60 < 100");
        assert!(!queue.has_room());
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.room().await }
        });
        tokio::task::yield_now().await;
        drop(first);
        // 60 held: the waiter's turn, at once.
        tokio::time::timeout(Duration::from_millis(1), waiting)
            .await
            .expect("woken when room came")
            .expect("the task ran");
        drop(second);
        tokio::time::timeout(Duration::from_millis(1), queue.room())
            .await
            .expect("room now");
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_that_leaves_the_queue_full_wakes_no_one() {
        let queue = QueueBytes::new(100);
        let budget = Budget::new(BudgetLimits {
            events: 100,
            bytes: usize::MAX,
        });
        let first = claim(&budget, &queue, 100).expect("room");
        let second = claim(&budget, &queue, 0);
        assert!(second.is_some(), "a count budget has room");
        let third = claim(&budget, &queue, 50);
        drop(third);
        let waiting = tokio::time::timeout(Duration::from_secs(1), queue.room()).await;
        assert!(waiting.is_err(), "still 100 bytes held");
        drop(first);
        tokio::time::timeout(Duration::from_millis(1), queue.room())
            .await
            .expect("room once the 100 bytes went");
    }
}
