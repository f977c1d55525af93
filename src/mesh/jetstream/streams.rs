//! The streams meshbroker keeps: created or brought back to their settings
//! whenever a log is first used (drift corrected: a stream changed or deleted
//! by hand is put right), removed when their Brokers and Channels go.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{
    Config, ConsumerErrorKind, DiscardPolicy, RetentionPolicy, StorageType,
};
use futures::TryStreamExt;

use super::connect::JetStream;
use super::names;

/// How long a publish's `Nats-Msg-Id` is remembered: a sender's retry within
/// this window is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Bytes all the Brokers of one namespace may hold.
    pub namespace_bytes: u64,
    /// Bytes one Channel may hold.
    pub channel_bytes: u64,
}

/// A stream as meshbroker wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub subjects: String,
    pub max_bytes: u64,
}

impl StreamSpec {
    pub fn brokers(namespace: &str, budgets: Budgets) -> Self {
        Self {
            name: names::broker_stream(namespace),
            subjects: names::broker_subjects(namespace),
            max_bytes: budgets.namespace_bytes,
        }
    }

    pub fn channel(namespace: &str, name: &str, budgets: Budgets) -> Self {
        Self {
            name: names::channel_stream(namespace, name),
            subjects: names::channel_subject(namespace, name),
            max_bytes: budgets.channel_bytes,
        }
    }
}

pub struct Streams {
    pub js: Arc<JetStream>,
    pub budgets: Budgets,
}

impl Streams {
    pub fn new(js: Arc<JetStream>, budgets: Budgets) -> Arc<Self> {
        Arc::new(Self { js, budgets })
    }

    /// Creates the stream, or puts its settings back as `spec` says.
    pub async fn ensure(&self, spec: &StreamSpec) -> Result<(), async_nats::Error> {
        let config = Config {
            name: spec.name.clone(),
            subjects: vec![spec.subjects.clone()],
            // Not interest: what is acknowledged is purged in batches
            // (see `purge`).
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            max_bytes: i64::try_from(spec.max_bytes).unwrap_or(i64::MAX),
            storage: StorageType::File,
            num_replicas: self.js.replicas,
            duplicate_window: DUPLICATE_WINDOW,
            description: Some("meshbroker event log".into()),
            ..Default::default()
        };
        self.js.context.create_or_update_stream(config).await?;
        Ok(())
    }

    pub async fn delete(&self, stream: &str) -> Result<(), async_nats::Error> {
        match self.js.context.delete_stream(stream).await {
            Ok(_) => Ok(()),
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(())
                }
                _ => Err(error.into()),
            },
        }
    }

    /// Removes what a gone Broker left in its namespace's stream.
    pub async fn purge_subject(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<(), async_nats::Error> {
        let stream = match self.js.context.get_stream(stream).await {
            Ok(stream) => stream,
            Err(_) => return Ok(()),
        };
        stream.purge().filter(subject).await?;
        Ok(())
    }

    pub async fn delete_consumer(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<(), async_nats::Error> {
        match self
            .js
            .context
            .delete_consumer_from_stream(consumer, stream)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => match error.kind() {
                ConsumerErrorKind::JetStream(e)
                    if [ErrorCode::CONSUMER_NOT_FOUND, ErrorCode::STREAM_NOT_FOUND]
                        .contains(&e.error_code()) =>
                {
                    Ok(())
                }
                _ => Err(error.into()),
            },
        }
    }

    /// Our streams on the server, each with its consumers' names.
    pub async fn ours(&self) -> Result<Vec<(String, Vec<String>)>, async_nats::Error> {
        let names: Vec<String> = self.js.context.stream_names().try_collect().await?;
        let mut ours = Vec::new();
        for name in names.into_iter().filter(|n| names::is_ours(n)) {
            let stream = self.js.context.get_stream(&name).await?;
            let consumers: Vec<String> = stream.consumer_names().try_collect().await?;
            ours.push((name, consumers));
        }
        Ok(ours)
    }
}
