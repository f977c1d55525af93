//! What JetStream holds, for `/metrics`: the bytes of each namespace's Broker
//! stream and each Channel's stream, and each Trigger's and Subscription's
//! lag (events not yet settled: not delivered or not acknowledged; and the
//! age of the oldest), summed over its consumers (a Trigger has one on its
//! Broker's stream and one on each Channel stream wired to its Broker).
//! Asked of JetStream every few seconds by a task of its own, so a scrape
//! never waits on NATS; what a scrape shows is at most that old. Each round
//! also purges what the consumers have acknowledged (`purge`), from the same
//! listing, and has the connection judge its server's version again
//! (`JetStream::recheck_server`), so a verdict is at most that old too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::TryStreamExt;

use super::names;
use super::purge::purge_acknowledged;
use super::streams::Streams;
use crate::locks::lock;
use crate::mesh::log::Owner;
use crate::shutdown::Shutdown;
use crate::telemetry::{ConsumerLag, LogReport};

const EVERY: Duration = Duration::from_secs(2);

/// Whose each consumer is, by consumer name, as the routing builds start them.
pub type Owners = Arc<Mutex<HashMap<String, Owner>>>;

/// Starts asking; the latest answer is in the returned cell.
pub fn start(streams: Arc<Streams>, owners: Owners, shutdown: Shutdown) -> Arc<ArcSwap<LogReport>> {
    let latest = Arc::new(ArcSwap::from_pointee(LogReport::default()));
    let cell = latest.clone();
    tokio::spawn(async move {
        loop {
            streams.js.recheck_server();
            match ask(&streams, &owners).await {
                Ok(report) => cell.store(Arc::new(report)),
                Err(error) => {
                    tracing::debug!(%error, "cannot read JetStream's state for the metrics")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = shutdown.clone().wait() => return,
            }
        }
    });
    latest
}

async fn ask(streams: &Streams, owners: &Owners) -> Result<LogReport, async_nats::Error> {
    let mut report = LogReport::default();
    let mut lags: HashMap<String, ConsumerLag> = HashMap::new();
    let now = async_nats::datetime::now();
    for (name, named) in streams.ours().await? {
        let stream = streams.js.context.get_stream(&name).await?;
        let bytes = stream.cached_info().state.bytes;
        let last_sequence = stream.cached_info().state.last_sequence;
        match names::log_of_stream(&name) {
            Some((namespace, None)) => report.namespace_bytes.push((namespace, bytes)),
            Some((namespace, Some(channel))) => {
                report.channel_bytes.push((namespace, channel, bytes))
            }
            None => continue,
        }
        let infos: Vec<_> = stream.consumers().try_collect().await?;
        if let Err(error) = purge_acknowledged(&stream, last_sequence, &named, &infos).await {
            tracing::warn!(stream = %name, %error, "cannot purge acknowledged events; trying again in the next round");
        }
        for info in infos {
            let Some(owner) = lock(owners).get(&info.name).cloned() else {
                continue;
            };
            let events = info.num_pending + info.num_ack_pending as u64;
            let mut oldest_seconds = 0.0;
            if events > 0 {
                let oldest = stream
                    .raw_message_builder()
                    .sequence(info.ack_floor.stream_sequence + 1)
                    .next_by_subject(info.config.filter_subject.clone())
                    .send()
                    .await;
                if let Ok(oldest) = oldest {
                    oldest_seconds = (now - oldest.time).as_seconds_f64().max(0.0);
                }
            }
            let lag = lags.entry(info.name).or_insert_with(|| ConsumerLag {
                kind: owner.kind,
                namespace: owner.namespace,
                name: owner.name,
                events: 0,
                oldest_seconds: 0.0,
            });
            lag.events += events;
            lag.oldest_seconds = lag.oldest_seconds.max(oldest_seconds);
        }
    }
    report.consumers = lags.into_values().collect();
    Ok(report)
}
