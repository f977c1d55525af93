//! A durable consumer as a route holds it: its task, stopped when the last
//! route holding it goes, and what a Trigger's rebuild may change in it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::task::AbortHandle;

use crate::mesh::consume::Member;
use crate::mesh::filter::Filter;

/// A consumer's task; stopped when the last handle goes.
pub struct Running(Option<AbortHandle>);

impl Running {
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(Some(tokio::spawn(task).abort_handle()))
    }

    /// No task of its own: a wiring whose work others do while it is held
    /// (JetStream's Channel-to-Broker Subscription, read by the Broker's
    /// Triggers).
    pub fn wiring() -> Self {
        Self(None)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// A running consumer, as a Trigger or Subscription route holds it.
pub struct Consumer {
    _running: Arc<Running>,
    filter: Option<Arc<ArcSwap<Filter>>>,
    /// A Trigger's place in its Broker's shared reader (embedded log).
    member: Option<Arc<Member>>,
}

impl Consumer {
    pub fn new(
        running: Arc<Running>,
        filter: Option<Arc<ArcSwap<Filter>>>,
        member: Option<Arc<Member>>,
    ) -> Self {
        Self {
            _running: running,
            filter,
            member,
        }
    }

    pub fn member(&self) -> Option<&Arc<Member>> {
        self.member.as_ref()
    }

    /// The Trigger's spec changed: events read from now on are filtered anew.
    pub fn refilter(&self, filter: &Arc<Filter>) {
        if let Some(current) = &self.filter {
            current.store(filter.clone());
        }
    }
}
