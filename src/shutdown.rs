//! The process-wide shutdown signal every background task and drain watches,
//! and a leader's term, which also ends by the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;
use tokio::time::Instant;

/// Resolves once the server begins shutting down (or a term ends).
#[derive(Clone)]
pub struct Shutdown {
    down: watch::Receiver<bool>,
    clock: Option<TermClock>,
}

/// When a term ends unless it is confirmed again (a leader's Lease renewed).
/// A paused process (a stopped VM, SIGSTOP, a starved node) finds its term
/// over by the clock the moment it runs again, whichever of its tasks runs
/// first — before the task that would notice the lost Lease tells it so.
#[derive(Clone)]
pub struct TermClock {
    started: Instant,
    /// Microseconds after `started`.
    ends_after: Arc<AtomicU64>,
}

impl TermClock {
    fn new(ends_at: Instant) -> Self {
        let clock = Self {
            started: Instant::now(),
            ends_after: Arc::default(),
        };
        clock.extend_to(ends_at);
        clock
    }

    pub fn extend_to(&self, ends_at: Instant) {
        let after = ends_at.saturating_duration_since(self.started).as_micros();
        self.ends_after
            .store(u64::try_from(after).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn has_run_out(&self) -> bool {
        let now = self.started.elapsed().as_micros();
        u64::try_from(now).unwrap_or(u64::MAX) >= self.ends_after.load(Ordering::Acquire)
    }
}

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        let shutdown = Self {
            down: receiver,
            clock: None,
        };
        (sender, shutdown)
    }

    /// A term that is also over at `ends_at` unless its clock is extended.
    pub fn term_until(ends_at: Instant) -> (watch::Sender<bool>, TermClock, Self) {
        let (sender, mut term) = Self::new();
        let clock = TermClock::new(ends_at);
        term.clock = Some(clock.clone());
        (sender, clock, term)
    }

    pub async fn wait(mut self) {
        // Err: the sender is gone, which also means the server is going away.
        let _ = self.down.wait_for(|down| *down).await;
    }

    /// Whether it is over: signalled, or a term whose clock ran out.
    pub fn is_down(&self) -> bool {
        *self.down.borrow() || self.clock.as_ref().is_some_and(TermClock::has_run_out)
    }

    /// Whether this is a leader's term and it is over: another replica may
    /// be leading now. (A process stopping while it leads alone is not.)
    pub fn is_a_term_over(&self) -> bool {
        self.clock.is_some() && self.is_down()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_term_is_over_when_its_clock_runs_out_unless_extended() {
        let (_end, clock, term) = Shutdown::term_until(Instant::now() + Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!term.is_down());
        clock.extend_to(Instant::now() + Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!term.is_down(), "extended");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(term.is_down(), "ran out, though nobody said so");

        let (end, _clock, term) = Shutdown::term_until(Instant::now() + Duration::from_secs(10));
        let _ = end.send(true);
        assert!(term.is_down(), "said so before its clock ran out");
        assert!(term.is_a_term_over());
        let (stop, process) = Shutdown::new();
        let _ = stop.send(true);
        assert!(
            process.is_down() && !process.is_a_term_over(),
            "a process stopping is no term"
        );
    }
}
