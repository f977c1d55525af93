//! Removes what every consumer has acknowledged, in batches. The streams
//! keep events by limits (`retention: limits`) rather than by interest:
//! under interest retention nats-server removes each message at its last
//! acknowledgement, and that per-message removal was about a sixth of the
//! CPU an event (meshbroker's and nats-server's together, 99 against 83 µs,
//! `bench/run.sh --only rounds --modes jetstream --against`, 2026-12-05).
//! Instead, every few seconds (with the figures for `/metrics`), each
//! subject of a stream is purged up to the lowest acknowledgement floor of
//! the consumers reading it, and a subject no consumer reads is purged
//! whole: what interest retention did at once, a few seconds later. What is
//! kept is at least what interest retention kept, so no consumer loses an
//! event; a stream's bytes, and so its budget, count delivered events for
//! those seconds too.

use std::collections::HashMap;

use async_nats::jetstream::consumer;
use async_nats::jetstream::stream::Stream;
use futures::TryStreamExt;

/// Purges `stream`'s acknowledged events. `last_sequence` is the stream's
/// last sequence as read before `consumers` were listed: a consumer made
/// after that listing to read new events starts past it (one made to replay
/// from a time finds what interest retention would have kept). `named` are the
/// consumers' names as listed before that: in a NATS cluster a consumer
/// whose leader does not answer in time is left out of the listing of
/// their details (nats-server names it only as missing, which async-nats
/// drops), and purging without it would take what it has not delivered —
/// so a round that misses one purges nothing.
pub async fn purge_acknowledged(
    stream: &Stream,
    last_sequence: u64,
    named: &[String],
    consumers: &[consumer::Info],
) -> Result<(), async_nats::Error> {
    if let Some(missing) = named
        .iter()
        .find(|name| !consumers.iter().any(|info| &info.name == *name))
    {
        tracing::debug!(%missing, "a consumer's details did not come; nothing purged this round");
        return Ok(());
    }
    let mut floors: HashMap<&str, u64> = HashMap::new();
    // A consumer of every subject (or of a wildcard) holds all of them back.
    let mut every_subject = last_sequence;
    for info in consumers {
        let floor = info.ack_floor.stream_sequence;
        let subject = info.config.filter_subject.as_str();
        let exact = !subject.is_empty() && !subject.contains(['*', '>']);
        if exact {
            let lowest = floors.entry(subject).or_insert(floor);
            *lowest = (*lowest).min(floor);
        } else {
            every_subject = every_subject.min(floor);
        }
    }
    let subjects: Vec<(String, usize)> =
        stream.info_with_subjects(">").await?.try_collect().await?;
    for (subject, _) in subjects {
        let floor = floors
            .get(subject.as_str())
            .map_or(last_sequence, |floor| (*floor).min(last_sequence))
            .min(every_subject);
        if floor > 0 {
            stream.purge().filter(subject).sequence(floor + 1).await?;
        }
    }
    Ok(())
}
