//! Keeping the routing table current: watch every kind the table reads, and after
//! a change (coalesced for a few milliseconds) list them all, build, and swap.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;

use super::Router;
use super::build::{Builder, Inputs};
use crate::resources::{
    Application, Broker, Channel, KindSpec, ServiceInstance, Subscription, Trigger, kind_of,
};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError, TypedStore};

/// Changes arriving within this window are built into one table.
const COALESCE: Duration = Duration::from_millis(10);

pub fn follow_resources(
    store: TypedStore,
    router: Arc<Router>,
    mut builder: Builder,
    shutdown: Shutdown,
) {
    let changed = Arc::new(Notify::new());
    let kinds: [&'static KindSpec; 6] = [
        kind_of::<Application>(),
        kind_of::<Channel>(),
        kind_of::<Subscription>(),
        kind_of::<Broker>(),
        kind_of::<Trigger>(),
        kind_of::<ServiceInstance>(),
    ];
    for kind in kinds {
        tokio::spawn(watch_kind(
            store.clone(),
            kind,
            changed.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(async move {
        loop {
            match inputs(&store).await {
                Ok((inputs, revision)) => router.install(builder.build(&inputs), revision),
                Err(error) => {
                    tracing::warn!(%error, "cannot read resources for the routing table; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            tokio::select! {
                () = changed.notified() => {}
                () = shutdown.clone().wait() => return,
            }
            tokio::time::sleep(COALESCE).await;
        }
    });
}

async fn watch_kind(
    store: TypedStore,
    kind: &'static KindSpec,
    changed: Arc<Notify>,
    shutdown: Shutdown,
) {
    loop {
        let since = match store
            .raw()
            .list(kind, None, &LabelSelector::everything())
            .await
        {
            Ok(list) => list.resource_version,
            Err(error) => {
                tracing::warn!(%error, kind = %kind.kind, "listing for the routing table failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Anything may have changed while the watch was down.
        changed.notify_one();
        let mut changes = match store
            .raw()
            .watch(kind, None, &LabelSelector::everything(), Some(&since))
            .await
        {
            Ok(changes) => changes,
            Err(error) => {
                tracing::debug!(%error, kind = %kind.kind, "watch for the routing table failed; re-listing");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                next = changes.next() => match next {
                    Some(Ok(_)) => changed.notify_one(),
                    _ => break,
                },
                () = shutdown.clone().wait() => return,
            }
        }
    }
}

/// Everything the table reads, and a revision every list is at least as new as.
async fn inputs(store: &TypedStore) -> Result<(Inputs, u64), StoreError> {
    let all = LabelSelector::everything();
    let (applications, revision) = store.list_with_version(None, &all).await?;
    let inputs = Inputs {
        applications,
        channels: store.list(None, &all).await?,
        subscriptions: store.list(None, &all).await?,
        brokers: store.list(None, &all).await?,
        triggers: store.list(None, &all).await?,
        instances: store.list(None, &all).await?,
    };
    Ok((inputs, revision.parse().unwrap_or_default()))
}
