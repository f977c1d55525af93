//! A Subscription from a Channel to one of our Brokers, in JetStream: a
//! durable consumer on the Channel's stream whose messages are published, as
//! they are (their `Nats-Msg-Id` included, so a relay repeated after a crash
//! is stored once), to the Broker's subject, and acknowledged once the
//! Broker's stream holds them. A full Broker (its namespace's budget) gets the
//! message again later (a delayed NAK, never dropped): the namespace lags
//! behind the Channel and no other namespace notices.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use super::consume::ACK_WAIT;
use super::names::ConsumerName;
use super::publish::StreamLog;
use super::streams::Streams;
use crate::mesh::routing::OpeningGuard;
use crate::shutdown::Shutdown;
use crate::telemetry::Throttle;

const RELAY_BATCH: usize = 256;
const PULL_EXPIRES: Duration = Duration::from_secs(5);
const FULL_WAIT: Duration = Duration::from_secs(1);
const FIRST_WAIT: Duration = Duration::from_millis(200);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

static TROUBLE_LOG: Throttle = Throttle::new();

pub async fn relay(
    streams: Arc<Streams>,
    consumer: ConsumerName,
    from: Arc<StreamLog>,
    to: Arc<StreamLog>,
    mut opening: OpeningGuard,
    shutdown: Shutdown,
) {
    let mut wait = FIRST_WAIT;
    loop {
        match open(&streams, &consumer, &from, &to).await {
            Ok(pulling) => {
                wait = FIRST_WAIT;
                opening.done();
                let stopped = tokio::select! {
                    () = relay_from(&streams, &pulling, &to, &consumer) => false,
                    () = shutdown.clone().wait() => true,
                };
                if stopped {
                    return;
                }
            }
            Err(error) => {
                if let Some(skipped) = TROUBLE_LOG.allow() {
                    tracing::warn!(%consumer, %error, skipped, "cannot open the JetStream relay; trying again");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.clone().wait() => return,
        }
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

async fn open(
    streams: &Streams,
    consumer: &ConsumerName,
    from: &StreamLog,
    to: &StreamLog,
) -> Result<PullConsumer, async_nats::Error> {
    streams.ensure(&from.stream).await?;
    streams.ensure(&to.stream).await?;
    let stream = streams.js.context.get_stream(&from.stream.name).await?;
    let config = pull::Config {
        durable_name: Some(consumer.to_string()),
        description: Some(format!("{} to {}", from.name, to.name)),
        deliver_policy: DeliverPolicy::New,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        // A namespace may lag for as long as it must: never given up.
        max_deliver: -1,
        filter_subject: from.subject.clone(),
        ..Default::default()
    };
    Ok(stream
        .get_or_create_consumer(consumer.as_str(), config)
        .await?)
}

/// Relays until the messages stop (JetStream away): the caller opens again.
/// Each message is published as it arrives and answered once its
/// publication is acknowledged, up to `RELAY_BATCH` in flight at once. The
/// pull requests overlap (the next goes out while the last is still being
/// served): pulling a batch, relaying it whole and waiting for every
/// acknowledgement before asking for the next stalled the relay once per
/// batch.
async fn relay_from(
    streams: &Streams,
    consumer: &PullConsumer,
    to: &StreamLog,
    name: &ConsumerName,
) {
    let requested = consumer
        .stream()
        .max_messages_per_batch(RELAY_BATCH)
        .expires(PULL_EXPIRES)
        .messages()
        .await;
    let Ok(mut messages) = requested else {
        return;
    };
    let mut in_flight = FuturesOrdered::new();
    loop {
        tokio::select! {
            message = messages.next(), if in_flight.len() < RELAY_BATCH => match message {
                Some(Ok(message)) => {
                    let (message, acker) = message.split();
                    let mut publish = PublishMessage::build().payload(message.payload);
                    if let Some(headers) = message.headers {
                        publish = publish.headers(headers);
                    }
                    let sent = streams.js.context.send_publish(to.subject.clone(), publish).await;
                    in_flight.push_back(async move {
                        let stored = match sent {
                            Ok(ack) => ack.await.map(|_| ()),
                            Err(error) => Err(error),
                        };
                        (stored, acker)
                    });
                }
                // What was published is answered before opening again.
                Some(Err(_)) | None => break,
            },
            Some((stored, acker)) = in_flight.next(), if !in_flight.is_empty() => {
                answer(stored, &acker, to, name).await;
            }
            else => break,
        }
    }
    while let Some((stored, acker)) = in_flight.next().await {
        answer(stored, &acker, to, name).await;
    }
}

async fn answer(
    stored: Result<(), async_nats::jetstream::context::PublishError>,
    acker: &Acker,
    to: &StreamLog,
    name: &ConsumerName,
) {
    let answer = match stored {
        Ok(()) => AckKind::Ack,
        Err(error) => {
            if let Some(skipped) = TROUBLE_LOG.allow() {
                tracing::warn!(consumer = %name, broker = %to.name, %error, skipped,
                    "the Broker's stream did not take an event; relayed again later");
            }
            AckKind::Nak(Some(FULL_WAIT))
        }
    };
    if let Err(error) = acker.ack_with(answer).await
        && let Some(skipped) = TROUBLE_LOG.allow()
    {
        tracing::warn!(consumer = %name, %error, skipped, "cannot answer JetStream; the event will be relayed again");
    }
}
