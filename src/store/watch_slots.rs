//! How many watches the resource API keeps open at once, in all and for one
//! caller. A watch holds a connection, a stream and, while it starts, a copy of
//! everything it lists (built under the embedded store's lock): 3,000 watches
//! that never read took 3 GB and slowed every write a hundredfold. Kubernetes'
//! clients open one watch per kind they follow, so the per-caller bound is far
//! above what one needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::locks;

pub const MAX_WATCHES: usize = 1024;
pub const MAX_WATCHES_PER_CALLER: usize = 128;

#[derive(Default)]
struct Open {
    total: usize,
    by_caller: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct WatchSlots {
    open: Arc<Mutex<Open>>,
    total: usize,
    per_caller: usize,
}

/// A watch's place, given back when the watch ends.
pub struct WatchSlot {
    open: Arc<Mutex<Open>>,
    caller: String,
}

/// Why a watch was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSlot {
    Total(usize),
    Caller(usize),
}

impl WatchSlots {
    pub fn new(total: usize, per_caller: usize) -> Self {
        Self {
            open: Arc::default(),
            total,
            per_caller,
        }
    }

    pub fn take(&self, caller: &str) -> Result<WatchSlot, NoSlot> {
        let mut open = locks::lock(&self.open);
        if open.total >= self.total {
            return Err(NoSlot::Total(self.total));
        }
        let mine = open.by_caller.entry(caller.to_string()).or_default();
        if *mine >= self.per_caller {
            return Err(NoSlot::Caller(self.per_caller));
        }
        *mine += 1;
        open.total += 1;
        Ok(WatchSlot {
            open: self.open.clone(),
            caller: caller.to_string(),
        })
    }
}

impl Default for WatchSlots {
    fn default() -> Self {
        Self::new(MAX_WATCHES, MAX_WATCHES_PER_CALLER)
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = locks::lock(&self.open);
        open.total = open.total.saturating_sub(1);
        if let Some(mine) = open.by_caller.get_mut(&self.caller) {
            *mine -= 1;
            if *mine == 0 {
                open.by_caller.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_in_all_and_per_caller_and_come_back() {
        let slots = WatchSlots::new(3, 2);
        let a1 = slots.take("a").expect("first");
        let _a2 = slots.take("a").expect("second");
        assert_eq!(slots.take("a").err(), Some(NoSlot::Caller(2)));
        let _b1 = slots.take("b").expect("b's first");
        assert_eq!(slots.take("c").err(), Some(NoSlot::Total(3)));
        drop(a1);
        let _c1 = slots.take("c").expect("a place came back");
        assert_eq!(slots.take("a").err(), Some(NoSlot::Total(3)));
    }
}
