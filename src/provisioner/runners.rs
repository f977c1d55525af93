//! Which instance records have a runner, so that each has at most one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::locks;

/// The instance records that have a runner, each with whether work arrived for it
/// since its runner last read the record.
///
/// A runner that read its record, found nothing to run and is about to stop would
/// otherwise miss an operation recorded in between: `spawn` sees a runner and
/// starts none. So `claim` marks the running one woken, and `release` — under the
/// same lock — lets a woken runner stop only after it has looked again.
#[derive(Default)]
pub struct Runners(Mutex<HashMap<String, bool>>);

impl Runners {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, bool>> {
        locks::lock(&self.0)
    }

    /// True when the caller must start a runner for `name`; false when one runs,
    /// which is then told to read its record again before it stops.
    pub fn claim(&self, name: &str) -> bool {
        let mut runners = self.lock();
        match runners.get_mut(name) {
            Some(woken) => {
                *woken = true;
                false
            }
            None => {
                runners.insert(name.to_string(), false);
                true
            }
        }
    }

    /// A runner that found nothing more to run asks to stop: true when it may (it
    /// is forgotten, so the next `claim` starts a new one), false when work arrived
    /// since it last read the record.
    pub fn release(&self, name: &str) -> bool {
        let mut runners = self.lock();
        match runners.get_mut(name) {
            Some(woken) if *woken => {
                *woken = false;
                false
            }
            _ => {
                runners.remove(name);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Runners;

    #[test]
    fn work_recorded_while_a_runner_finishes_is_run_by_it() {
        let runners = Runners::default();
        assert!(runners.claim("a"), "no runner yet: start one");
        assert!(!runners.claim("a"), "one runs: it is woken instead");
        assert!(!runners.release("a"), "woken: it reads the record again");
        assert!(runners.release("a"), "nothing new since: it stops");
        assert!(runners.claim("a"), "the next operation starts a new runner");
        assert!(runners.claim("b"), "records are independent");
    }
}
