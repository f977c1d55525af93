//! A Trigger's or an HTTP Subscription's JetStream consumer: a durable pull
//! consumer whose events go to the object's dispatcher, one message taken per
//! free place in the dispatcher's queue (so a slow subscriber lags in
//! JetStream, not in memory). A Trigger's filter is applied here: an event it
//! does not pass is acknowledged at once.
//!
//! Acknowledgements go through a task of their own (`acks`) that holds every
//! message in delivery (and gathers answers for a millisecond, so several go
//! in one write): it acknowledges a delivery that is over, answers a
//! failed attempt with a NAK delayed until the next attempt is due (the
//! dispatcher hands retries to the log, see `RetryBy::Log`), and tells
//! JetStream every few seconds that held messages are still being worked on,
//! so none is redelivered while a replica holds it. That task outlives the
//! consumer's own (a Trigger deleted mid-delivery still acknowledges what was
//! in flight) and ends with the last delivery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::Acker;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::names::ConsumerName;
use super::stored::event_of;
use super::streams::{StreamSpec, Streams};
use crate::mesh::dispatch::{Dispatcher, RetryBy, RetryDue, Settle, Settled};
use crate::mesh::filter::{Filter, passes};
use crate::mesh::log::Start;
use crate::mesh::routing::OpeningGuard;
use crate::shutdown::Shutdown;
use crate::telemetry::{Metrics, Throttle};

/// How long JetStream waits for an acknowledgement before delivering a
/// message again (to any replica): what a replica that died held comes back
/// this long after. Held messages are kept alive well within it.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// Deliveries beyond the policy's attempts, for messages a replica took and
/// died with: the next replica makes the last attempt and dead-letters.
const SPARE_DELIVERIES: i64 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(200);
const LONGEST_WAIT: Duration = Duration::from_secs(5);
/// How long the answers that come one after another are gathered before
/// they go, so that several leave in one write to NATS (and nats-server reads
/// them in one): measured, nats-server's CPU an event −12 % at 2,000 events/s
/// and −5 % at 3,300/s. Only redeliveries wait for answers, and those only
/// after `ACK_WAIT`.
const ACK_GATHER: Duration = Duration::from_millis(1);
/// nats-server reads a NAK's delay as signed 64-bit nanoseconds and answers
/// one it cannot read as a plain NAK, redelivering at once (its
/// `processNak`): a longer wait (a huge `backoffDelay`, doubled) is sent as
/// this, about 292 years.
const LONGEST_NAK_DELAY: Duration = Duration::from_nanos(i64::MAX as u64);
/// Most messages one pull request asks for.
const PULL_BATCH: usize = 128;
/// How long a pull request waits for messages before it is made again.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

static TROUBLE_LOG: Throttle = Throttle::new();

pub struct PullSettings {
    pub streams: Arc<Streams>,
    pub stream: StreamSpec,
    /// The subject the consumer reads (its Broker's or its Channel's).
    pub subject: String,
    pub consumer: ConsumerName,
    pub start: Start,
    pub dispatcher: Arc<Dispatcher>,
    /// A Trigger's filter; None delivers everything (a Subscription).
    pub filter: Option<Arc<ArcSwap<Filter>>>,
    pub metrics: Arc<Metrics>,
    /// Done once the consumer is first open.
    pub opening: OpeningGuard,
    pub shutdown: Shutdown,
}

/// Consumes until the consumer is stopped or the broker shuts down, opening
/// the consumer again (with growing waits) whenever JetStream is away.
pub async fn pull(mut settings: PullSettings) {
    let (commands, queue) = mpsc::unbounded_channel();
    tokio::spawn(acks(queue));
    let settler: Arc<dyn Settle> = Arc::new(Settler(commands.clone()));
    let mut wait = FIRST_WAIT;
    loop {
        match open(&settings).await {
            Ok(consumer) => {
                wait = FIRST_WAIT;
                settings.opening.done();
                if consume(&settings, &consumer, &commands, &settler).await == Stop::Now {
                    return;
                }
            }
            Err(error) => {
                if let Some(skipped) = TROUBLE_LOG.allow() {
                    tracing::warn!(consumer = %settings.consumer, %error, skipped, "cannot open the JetStream consumer; trying again");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = settings.shutdown.clone().wait() => return,
        }
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

/// Creates the consumer, or brings its settings back to what the object
/// asks (its starting point is kept: a consumer never moves back or ahead).
async fn open(settings: &PullSettings) -> Result<PullConsumer, async_nats::Error> {
    settings.streams.ensure(&settings.stream).await?;
    let stream = settings
        .streams
        .js
        .context
        .get_stream(&settings.stream.name)
        .await?;
    let wanted = pull::Config {
        durable_name: Some(settings.consumer.to_string()),
        description: Some(settings.dispatcher.target().label.clone()),
        deliver_policy: deliver_policy(settings.start)?,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: max_deliver(settings),
        filter_subject: settings.subject.clone(),
        ..Default::default()
    };
    match stream
        .get_consumer::<pull::Config>(settings.consumer.as_str())
        .await
    {
        Ok(existing) => {
            let config = &existing.cached_info().config;
            if config.max_deliver == wanted.max_deliver
                && config.ack_wait == wanted.ack_wait
                && config.filter_subject == wanted.filter_subject
            {
                return Ok(existing);
            }
            let kept = pull::Config {
                deliver_policy: config.deliver_policy,
                ..wanted
            };
            // Creating a durable consumer that exists updates it.
            Ok(stream.create_consumer(kept).await?)
        }
        Err(_) => Ok(stream.create_consumer(wanted).await?),
    }
}

/// Deliveries JetStream makes of one event: the policy's attempts and the
/// spare ones. It must follow the policy: an event JetStream stops delivering
/// before the dispatcher dead-letters it would be stuck.
fn max_deliver(settings: &PullSettings) -> i64 {
    i64::from(settings.dispatcher.target().policy.retry) + 1 + SPARE_DELIVERIES
}

pub fn deliver_policy(start: Start) -> Result<DeliverPolicy, async_nats::Error> {
    Ok(match start {
        Start::End => DeliverPolicy::New,
        Start::Since(ms) => DeliverPolicy::ByStartTime {
            start_time: async_nats::datetime::from_nanos(i128::from(ms) * 1_000_000)?,
        },
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// Shutting down or the dispatcher is gone.
    Now,
    /// The messages stream ended: open the consumer again.
    Reopen,
}

async fn consume(
    settings: &PullSettings,
    consumer: &PullConsumer,
    commands: &mpsc::UnboundedSender<Command>,
    settler: &Arc<dyn Settle>,
) -> Stop {
    let label = settings.dispatcher.target().label.clone();
    let opened_with = max_deliver(settings);
    loop {
        if max_deliver(settings) != opened_with {
            // The Trigger's retries changed: open again, which updates it.
            return Stop::Reopen;
        }
        // Places in the dispatcher's queue first, and only as many messages
        // as there are places: nothing waits unseen in a prefetch buffer
        // while its acknowledgement wait runs out. Only as many as its bytes
        // allow too, each counted as large as the largest event so far.
        let first = tokio::select! {
            reservation = settings.dispatcher.reserve() => match reservation {
                Some(reservation) => reservation,
                None => return Stop::Now,
            },
            () = settings.shutdown.clone().wait() => return Stop::Now,
        };
        let mut places = vec![first];
        while places.len() < PULL_BATCH
            && settings.dispatcher.has_room_for(places.len() + 1)
            && let Some(place) = settings.dispatcher.try_reserve_place()
        {
            places.push(place);
        }
        let requested = consumer
            .batch()
            .max_messages(places.len())
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match requested {
            Ok(batch) => batch,
            Err(error) => {
                if let Some(skipped) = TROUBLE_LOG.allow() {
                    tracing::warn!(consumer = %settings.consumer, %error, skipped, "cannot pull from JetStream");
                }
                return Stop::Reopen;
            }
        };
        loop {
            let message = tokio::select! {
                message = batch.next() => message,
                () = settings.shutdown.clone().wait() => return Stop::Now,
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    if let Some(skipped) = TROUBLE_LOG.allow() {
                        tracing::warn!(consumer = %settings.consumer, %error, skipped, "pulling from JetStream failed");
                    }
                    return Stop::Reopen;
                }
                None => break,
            };
            let (seq, delivered) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                Err(error) => {
                    tracing::error!(consumer = %settings.consumer, %error, "a JetStream message without its delivery details; skipped");
                    continue;
                }
            };
            let (message, acker) = message.split();
            let event = match event_of(&message.payload, message.headers.as_ref()) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(consumer = %settings.consumer, seq, %error, "an unreadable event in JetStream; dropped from this consumer");
                    let _ = commands.send(Command::Answer(acker, AckKind::Term));
                    continue;
                }
            };
            if let Some(filter) = &settings.filter
                && !passes(&filter.load(), &label, &event.event, &settings.metrics)
            {
                let _ = commands.send(Command::Answer(acker, AckKind::Ack));
                continue;
            }
            let Some(place) = places.pop() else {
                // More messages than asked for: JetStream delivers it again.
                continue;
            };
            let retry = settings.dispatcher.target().policy.retry;
            let failed = u32::try_from(delivered.saturating_sub(1))
                .unwrap_or(u32::MAX)
                .min(retry);
            let resume = (failed > 0).then_some(RetryDue { failed, due_ms: 0 });
            let _ = commands.send(Command::Hold(seq, acker));
            place.send_settled(
                Arc::new(event),
                Some(Settled {
                    by: settler.clone(),
                    seq,
                    resume,
                }),
            );
        }
    }
}

enum Command {
    /// A message handed to the dispatcher, by its stream sequence.
    Hold(u64, Acker),
    /// Its delivery is over.
    Done(u64),
    /// Its attempt failed; the next is due after this long.
    RetryIn(u64, Duration),
    /// A message not delivered here, answered at once.
    Answer(Acker, AckKind),
}

struct Settler(mpsc::UnboundedSender<Command>);

impl Settle for Settler {
    fn settle(&self, seq: u64) {
        let _ = self.0.send(Command::Done(seq));
    }

    fn retrying(&self, seq: u64, due: RetryDue) -> RetryBy {
        let _ = self
            .0
            .send(Command::RetryIn(seq, due.left().min(LONGEST_NAK_DELAY)));
        RetryBy::Log
    }
}

/// Answers JetStream for one consumer's messages (see the module notes).
async fn acks(mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut held: HashMap<u64, Acker> = HashMap::new();
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gathered = Vec::new();
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = progress.tick() => {
                for acker in held.values() {
                    answer(acker, AckKind::Progress).await;
                }
                continue;
            }
        };
        let Some(command) = command else { return };
        gathered.push(command);
        tokio::time::sleep(ACK_GATHER).await;
        while let Ok(command) = commands.try_recv() {
            gathered.push(command);
        }
        for command in gathered.drain(..) {
            match command {
                Command::Hold(seq, acker) => {
                    held.insert(seq, acker);
                }
                Command::Done(seq) => {
                    if let Some(acker) = held.remove(&seq) {
                        answer(&acker, AckKind::Ack).await;
                    }
                }
                Command::RetryIn(seq, delay) => {
                    if let Some(acker) = held.remove(&seq) {
                        answer(&acker, AckKind::Nak(Some(delay))).await;
                    }
                }
                Command::Answer(acker, kind) => answer(&acker, kind).await,
            }
        }
    }
}

/// An answer JetStream does not get is no loss: the message is delivered
/// again after the acknowledgement wait.
async fn answer(acker: &Acker, kind: AckKind) {
    if let Err(error) = acker.ack_with(kind).await
        && let Some(skipped) = TROUBLE_LOG.allow()
    {
        tracing::warn!(%error, skipped, "cannot answer JetStream; the message will come again");
    }
}
