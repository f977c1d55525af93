//! Logs and consumers a build started that are not open yet (JetStream's
//! streams and consumers are made over the network, after the build; an
//! embedded log's consumer opens its cursor in its task, and a new cursor
//! starts at the log's end then). While any is, the table does not count as
//! routing what it was built from, so an object reports Ready only once
//! events reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Default)]
pub struct Opening(Arc<AtomicUsize>);

impl Opening {
    /// One more thing to open; it counts until the guard is done or dropped.
    pub fn start(&self) -> OpeningGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        OpeningGuard(Some(self.0.clone()))
    }

    pub fn is_idle(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }
}

pub struct OpeningGuard(Option<Arc<AtomicUsize>>);

impl OpeningGuard {
    /// Open: no longer holds readiness back.
    pub fn done(&mut self) {
        if let Some(count) = self.0.take() {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for OpeningGuard {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_once_every_guard_is_done_or_dropped() {
        let opening = Opening::default();
        assert!(opening.is_idle());
        let mut first = opening.start();
        let second = opening.start();
        assert!(!opening.is_idle());
        first.done();
        first.done();
        assert!(!opening.is_idle(), "done twice counts once");
        drop(second);
        assert!(opening.is_idle());
    }
}
