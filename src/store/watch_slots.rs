//! How many watches the resource API and the console keep open at once, in
//! all and for one caller (and, alike, how many lists are being sent). A watch holds a connection, a stream and, while it
//! starts, a copy of everything it lists (built under the embedded store's
//! lock): 3,000 watches that never read took 3 GB and slowed every write a
//! hundredfold. Kubernetes' clients open one watch per kind they follow, so
//! the per-caller bound is far above what one needs. The admin's watches are
//! bounded only by the per-caller bound, so tenants filling the total cannot
//! lock the administrator out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::locks;

pub const MAX_WATCHES: usize = 1024;
pub const MAX_WATCHES_PER_CALLER: usize = 128;
/// A list being sent holds a copy of all it lists until a slow reader took
/// it (60 slow readers of a 38 MB namespace held 3 GB): far fewer
/// at once than watches, which hold their copy only while they start.
pub const MAX_LISTS: usize = 256;
pub const MAX_LISTS_PER_CALLER: usize = 16;

#[derive(Default)]
struct Open {
    total: usize,
    by_caller: HashMap<String, usize>,
}

pub struct WatchSlots {
    open: Arc<Mutex<Open>>,
    total: usize,
    per_caller: usize,
    /// What the places are for, as refusals name it: `watches`.
    what: &'static str,
}

/// A watch's place, given back when the watch ends.
pub struct WatchSlot {
    open: Arc<Mutex<Open>>,
    caller: String,
    in_total: bool,
}

/// Why a watch (or a list) was not opened.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    #[error("{1} {0} are open, as many as this server keeps; retry later")]
    Total(&'static str, usize),
    #[error(
        "{1} {0} are open for this caller (the admin, or one namespace's tokens together), as many as one may; close one or retry later"
    )]
    Caller(&'static str, usize),
}

impl WatchSlots {
    pub fn new(what: &'static str, total: usize, per_caller: usize) -> Self {
        Self {
            open: Arc::default(),
            total,
            per_caller,
            what,
        }
    }

    /// The places of the lists being sent.
    pub fn for_lists() -> Self {
        Self::new("lists being sent", MAX_LISTS, MAX_LISTS_PER_CALLER)
    }

    /// A place for one more watch of `caller`; `in_total` unless the caller
    /// is the admin.
    pub fn take(&self, caller: &str, in_total: bool) -> Result<WatchSlot, NoSlot> {
        let mut open = locks::lock(&self.open);
        if in_total && open.total >= self.total {
            return Err(NoSlot::Total(self.what, self.total));
        }
        let mine = open.by_caller.entry(caller.to_string()).or_default();
        if *mine >= self.per_caller {
            return Err(NoSlot::Caller(self.what, self.per_caller));
        }
        *mine += 1;
        if in_total {
            open.total += 1;
        }
        Ok(WatchSlot {
            open: self.open.clone(),
            caller: caller.to_string(),
            in_total,
        })
    }
}

impl Default for WatchSlots {
    fn default() -> Self {
        Self::new("watches", MAX_WATCHES, MAX_WATCHES_PER_CALLER)
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = locks::lock(&self.open);
        if self.in_total {
            open.total = open.total.saturating_sub(1);
        }
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
        let slots = WatchSlots::new("watches", 3, 2);
        let a1 = slots.take("a", true).expect("first");
        let _a2 = slots.take("a", true).expect("second");
        assert_eq!(
            slots.take("a", true).err(),
            Some(NoSlot::Caller("watches", 2))
        );
        let _b1 = slots.take("b", true).expect("b's first");
        assert_eq!(
            slots.take("c", true).err(),
            Some(NoSlot::Total("watches", 3))
        );
        // Outside the total (the admin): only its own bound applies.
        let _admin1 = slots.take("admin", false).expect("the admin's first");
        let _admin2 = slots.take("admin", false).expect("the admin's second");
        assert_eq!(
            slots.take("admin", false).err(),
            Some(NoSlot::Caller("watches", 2))
        );
        drop(a1);
        let _c1 = slots.take("c", true).expect("a place came back");
        assert_eq!(
            slots.take("a", true).err(),
            Some(NoSlot::Total("watches", 3))
        );
    }
}
