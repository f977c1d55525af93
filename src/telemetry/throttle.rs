//! A log throttle for per-event warnings: under overload the same warning would
//! otherwise be written thousands of times a second and become the overload.
//! The metrics still count every occurrence; the log says how many it skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// At most one log line per this many milliseconds.
const PERIOD_MS: u64 = 1000;

#[derive(Default)]
pub struct Throttle {
    last_ms: AtomicU64,
    skipped: AtomicU64,
}

impl Throttle {
    pub const fn new() -> Self {
        Self {
            last_ms: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// Some(skipped since the last line) when a line may be written now.
    pub fn allow(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = self.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= PERIOD_MS
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.skipped.swap(0, Ordering::AcqRel));
        }
        self.skipped.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_rest_counted() {
        let throttle = Throttle::new();
        assert_eq!(throttle.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(throttle.allow(), None);
        }
        throttle.last_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.allow(), Some(5));
    }
}
