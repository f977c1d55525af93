//! A Broker's or Channel's log in JetStream, as its ingress and relays append
//! to it: each event published to the log's subject in its stored form
//! (`stored`), with `Nats-Msg-Id` from its `source` and `id`, answered once
//! JetStream acknowledged every one of them.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use cloudevents::AttributesReader;
use sha2::{Digest, Sha256};

use super::connect::JetStream;
use super::stored::stored_form;
use super::streams::StreamSpec;
use crate::mesh::event::PreparedEvent;
use crate::mesh::log::AppendError;

pub struct StreamLog {
    /// `broker/<ns>/<name>` or `channel/<ns>/<name>`, as errors name it.
    pub name: String,
    pub subject: String,
    pub stream: StreamSpec,
    js: Arc<JetStream>,
}

impl StreamLog {
    pub fn new(name: String, subject: String, stream: StreamSpec, js: Arc<JetStream>) -> Self {
        Self {
            name,
            subject,
            stream,
            js,
        }
    }

    /// Publishes `events` in order and waits for JetStream's acknowledgement
    /// of each. With `dedupe`, a sender that retries after a failure is not
    /// stored twice (the message ids), whatever part of the batch went in
    /// before.
    pub async fn append(
        &self,
        events: &[Arc<PreparedEvent>],
        dedupe: bool,
    ) -> Result<(), AppendError> {
        if let Some(why) = self.js.unusable() {
            return Err(AppendError::Unavailable(why));
        }
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let sent = self
                .js
                .context
                .send_publish(self.subject.clone(), message_of(event, dedupe))
                .await;
            acks.push(sent.map_err(|e| self.refusal(e))?);
        }
        for ack in acks {
            ack.await.map_err(|e| self.refusal(e))?;
        }
        Ok(())
    }

    fn refusal(&self, error: async_nats::jetstream::context::PublishError) -> AppendError {
        let full = std::error::Error::source(&error)
            .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
            .is_some_and(|e| e.error_code() == ErrorCode::STREAM_STORE_FAILED);
        if full {
            return AppendError::Full(self.name.clone());
        }
        let why = match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => {
                return AppendError::TooLarge(
                    "the event is larger than one NATS message may be (the server's max_payload)"
                        .into(),
                );
            }
            PublishErrorKind::StreamNotFound => {
                format!("{} is not set up in JetStream yet", self.name)
            }
            _ => format!("JetStream did not store the event: {error}"),
        };
        AppendError::Unavailable(why)
    }
}

/// An event as a JetStream message; with `dedupe`, identified by its
/// `source` and `id`.
fn message_of(event: &PreparedEvent, dedupe: bool) -> PublishMessage {
    let message = PublishMessage::build().payload(stored_form(event));
    if !dedupe {
        return message;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        message_id(event.event.source(), event.event_id()),
    );
    message.headers(headers)
}

/// `Nats-Msg-Id`: a digest of `source` and `id`, which together identify an
/// event (CloudEvents), so any id a sender chose — a megabyte long, or with
/// line breaks a header cannot hold — makes a short, valid header.
fn message_id(source: &str, id: &str) -> String {
    let mut digest = Sha256::new();
    digest.update((source.len() as u64).to_be_bytes());
    digest.update(source.as_bytes());
    digest.update(id.as_bytes());
    crate::ids::hex(&digest.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_tell_events_apart_and_fit_a_header() {
        let id = message_id("/orders", "e-1");
        assert_eq!(
            id,
            message_id("/orders", "e-1"),
            "the same event, the same id"
        );
        assert_ne!(id, message_id("/orders", "e-2"));
        assert_ne!(message_id("/a b", "c"), message_id("/a", "b c"));
        let odd = message_id("/orders", "line\r\nbreak");
        assert_eq!(odd.len(), 32);
        assert!(odd.parse::<async_nats::HeaderValue>().is_ok());
    }
}
