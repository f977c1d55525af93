//! Keeping the routing table current. Each kind the table reads is listed once
//! and then watched; every change goes into the in-memory `Inputs`. After a
//! change (coalesced for a few milliseconds, and with every watch drained) the
//! table is built again and swapped in, unless nothing the table reads changed
//! (conditions in a status: the readiness controllers' own writes), in which
//! case the table in place counts as current for the newer revision, at the
//! cost of no build at all. A watch that ends or fails is listed again.
//!
//! The revision a table is current for (what `Router::has_routed` compares an
//! object's resourceVersion with) is the newest one seen, taken once a round
//! over all watches found each of them empty after it was seen. The embedded
//! store feeds every watch from one change log in commit order, so a watch
//! found empty then has delivered every change up to that revision. A
//! Kubernetes API server streams each kind separately; there the rule holds as
//! far as the streams are prompt. (Listing every kind again on every change was
//! exact there too, but read every object again for each change: with 10,000
//! Triggers, about 100 ms of work, and of the store's time, per status write.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::core::DynamicObject;

use super::Router;
use super::build::Builder;
use super::inputs::{Inputs, Watched};
use crate::resources::{
    Application, Broker, Channel, KindSpec, ServiceInstance, Subscription, Trigger, kind_of,
};
use crate::shutdown::Shutdown;
use crate::store::{
    LabelSelector, Store, StoreError, TypedStore, WatchEvent, WatchEventType, WatchStream,
};
use crate::telemetry::Throttle;

/// Changes arriving within this window are built into one table.
const COALESCE: Duration = Duration::from_millis(10);

/// How long to wait before listing again after the store refused.
const RETRY: Duration = Duration::from_millis(500);

/// Rounds of taking changes after which a table goes in even though the
/// watches were not yet found empty (at the last revision known complete), so
/// a steady stream of changes cannot hold the table back.
const MAX_ROUNDS: usize = 64;

static REVISION_LOG: Throttle = Throttle::new();

pub fn follow_resources(
    store: TypedStore,
    router: Arc<Router>,
    builder: Builder,
    shutdown: Shutdown,
) {
    let follower = Follower {
        store: store.raw().clone(),
        router,
        builder,
        inputs: Inputs::default(),
        seen: 0,
        complete: 0,
        shutdown,
    };
    tokio::spawn(follower.run());
}

/// A kind the table reads, and how its objects reach the inputs.
#[derive(Clone, Copy)]
struct Followed {
    kind: &'static KindSpec,
    apply: fn(&mut Inputs, WatchEventType, DynamicObject) -> bool,
    replace_all: fn(&mut Inputs, Vec<DynamicObject>) -> bool,
}

impl Followed {
    fn of<K: Watched>() -> Self {
        Self {
            kind: kind_of::<K>(),
            apply: Inputs::apply::<K>,
            replace_all: Inputs::replace_all::<K>,
        }
    }

    fn all() -> [Self; 6] {
        [
            Self::of::<Application>(),
            Self::of::<Channel>(),
            Self::of::<Subscription>(),
            Self::of::<Broker>(),
            Self::of::<Trigger>(),
            Self::of::<ServiceInstance>(),
        ]
    }
}

/// A kind's watch, from the revision it was listed at.
struct Watch {
    followed: Followed,
    changes: WatchStream,
}

type Next = Option<Result<WatchEvent, StoreError>>;

/// What draining the watches did.
struct Drained {
    /// Routing may have changed.
    changed: bool,
    /// A round found every watch empty: everything up to the newest revision
    /// seen has been taken.
    empty: bool,
}

struct Follower {
    store: Arc<dyn Store>,
    router: Arc<Router>,
    builder: Builder,
    inputs: Inputs,
    /// The newest store revision seen in a list or a change.
    seen: u64,
    /// The newest revision every watch is known to have delivered in full.
    complete: u64,
    shutdown: Shutdown,
}

impl Follower {
    async fn run(mut self) {
        let mut watches = Vec::new();
        for followed in Followed::all() {
            let Some(watch) = self.open(followed).await else {
                return;
            };
            watches.push(watch);
        }
        // The first table goes in whatever it holds.
        let mut changed = true;
        loop {
            let Some(drained) = self.drain(&mut watches).await else {
                return;
            };
            changed |= drained.changed;
            if drained.empty {
                self.complete = self.seen;
            }
            if changed {
                self.install();
            } else {
                self.router.advance(self.complete);
            }
            changed = false;
            if !drained.empty {
                continue;
            }
            let shutdown = self.shutdown.clone();
            let (index, next) = tokio::select! {
                next = next_change(&mut watches) => next,
                () = shutdown.wait() => return,
            };
            let Some(taken) = self.take(&mut watches[index], next).await else {
                return;
            };
            changed = taken;
            tokio::time::sleep(COALESCE).await;
        }
    }

    fn install(&mut self) {
        let started = Instant::now();
        let table = self.builder.build(&self.inputs);
        self.router.install(table, self.complete);
        tracing::debug!(
            took_us = started.elapsed().as_micros(),
            revision = self.complete,
            triggers = self.inputs.triggers.len(),
            "routing table built"
        );
    }

    /// Takes what the watches hold until a round over all of them finds
    /// nothing, or for `MAX_ROUNDS`; None on shutdown.
    async fn drain(&mut self, watches: &mut [Watch]) -> Option<Drained> {
        let mut changed = false;
        for _ in 0..MAX_ROUNDS {
            let mut took = false;
            for watch in watches.iter_mut() {
                // Unconstrained: tokio's cooperative budget would otherwise
                // answer "nothing yet" for a change that is there, and an empty
                // round must mean empty.
                while let Some(next) =
                    tokio::task::unconstrained(watch.changes.next()).now_or_never()
                {
                    took = true;
                    changed |= self.take(watch, next).await?;
                }
            }
            if !took {
                return Some(Drained {
                    changed,
                    empty: true,
                });
            }
            tokio::task::yield_now().await;
        }
        Some(Drained {
            changed,
            empty: false,
        })
    }

    /// One item of a watch: a change goes into the inputs; the end of the
    /// watch (or its failure) lists the kind again and watches on from there.
    /// Some(whether routing may have changed), None on shutdown.
    async fn take(&mut self, watch: &mut Watch, next: Next) -> Option<bool> {
        match next {
            Some(Ok(change)) => {
                self.saw(change.object.metadata.resource_version.as_deref());
                Some((watch.followed.apply)(
                    &mut self.inputs,
                    change.type_,
                    change.object,
                ))
            }
            ended => {
                if let Some(Err(error)) = ended {
                    tracing::debug!(%error, kind = %watch.followed.kind.kind, "watch for the routing table failed; re-listing");
                }
                *watch = self.open(watch.followed).await?;
                Some(true)
            }
        }
    }

    /// Lists a kind into the inputs and watches it from there, retrying until
    /// the store answers; None on shutdown.
    async fn open(&mut self, followed: Followed) -> Option<Watch> {
        let everything = LabelSelector::everything();
        loop {
            let opened = async {
                let list = self.store.list(followed.kind, None, &everything).await?;
                let since = Some(list.resource_version.as_str());
                let changes = self
                    .store
                    .watch(followed.kind, None, &everything, since)
                    .await?;
                Ok::<_, StoreError>((list, changes))
            }
            .await;
            match opened {
                Ok((list, changes)) => {
                    self.saw(Some(&list.resource_version));
                    (followed.replace_all)(&mut self.inputs, list.items);
                    return Some(Watch { followed, changes });
                }
                Err(error) => {
                    tracing::warn!(%error, kind = %followed.kind.kind, "cannot list and watch for the routing table; retrying");
                    let shutdown = self.shutdown.clone();
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        () = shutdown.wait() => return None,
                    }
                }
            }
        }
    }

    fn saw(&mut self, resource_version: Option<&str>) {
        match resource_version.map(str::parse::<u64>) {
            Some(Ok(revision)) => self.seen = self.seen.max(revision),
            _ => {
                if let Some(skipped) = REVISION_LOG.allow() {
                    tracing::warn!(
                        ?resource_version,
                        skipped,
                        "a resourceVersion that is not a number: status controllers cannot learn that the routing table reflects it"
                    );
                }
            }
        }
    }
}

/// The next item of whichever watch has one first (None: that watch ended).
async fn next_change(watches: &mut [Watch]) -> (usize, Next) {
    let nexts = watches.iter_mut().map(|watch| watch.changes.next());
    let (next, index, _) = futures::future::select_all(nexts).await;
    (index, next)
}

#[cfg(test)]
mod tests;
