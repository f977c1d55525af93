//! How many bytes a namespace's Broker logs, or one Channel's log, may hold on
//! disk: an append takes its share before it is written and a trim gives it
//! back, so a full budget refuses the next append instead of dropping anything.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct DiskBudget {
    limit: u64,
    used: AtomicU64,
}

impl DiskBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `bytes`, unless that would go over the limit. An empty budget
    /// takes anything, so one event larger than the limit is not refused for
    /// ever.
    pub fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used == 0 || used.saturating_add(bytes) <= self.limit)
                    .then(|| used.saturating_add(bytes))
            })
            .is_ok()
    }

    /// Counts bytes already on disk (found when the file is opened).
    pub fn add(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    pub fn give_back(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_what_is_given_back() {
        let budget = DiskBudget::new(100);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(41), "101 > 100");
        assert!(budget.try_take(40));
        assert!(!budget.try_take(1));
        budget.give_back(50);
        assert!(budget.try_take(50));
        assert_eq!(budget.used(), 100);
    }

    #[test]
    fn an_empty_budget_takes_one_event_larger_than_its_limit() {
        let budget = DiskBudget::new(10);
        assert!(budget.try_take(25));
        assert!(!budget.try_take(1));
        budget.give_back(25);
        assert_eq!(budget.used(), 0);
    }
}
