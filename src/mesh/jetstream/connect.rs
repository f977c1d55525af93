//! The NATS connection: options as NATS clients take them (URL with user and
//! password or token, a credentials file, TLS), connecting in the background
//! and reconnecting for ever, so meshbroker starts and recovers while NATS
//! is away (its ingress answers 503 meanwhile).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, Context};

use crate::config::NatsSettings;

/// How long a JetStream request (a publish acknowledgement, a stream or
/// consumer change) may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The first nats-server that keeps what it acknowledged when a stream with
/// `discard: new` fills its byte budget: earlier ones let a message through
/// that its own size check undercounts, then drop the stream's oldest
/// messages to make room (nats-server#4775, fixed in 2.10.7) — events
/// answered 202 and never delivered.
const FIRST_SAFE_SERVER: (u64, u64, u64) = (2, 10, 7);

/// What is known of the current connection's server.
const SERVER_UNKNOWN: u8 = 0;
const SERVER_SAFE: u8 = 1;
const SERVER_UNSAFE: u8 = 2;

pub struct JetStream {
    client: async_nats::Client,
    pub context: Context,
    pub replicas: usize,
    /// Whether the server of the current connection is `FIRST_SAFE_SERVER`
    /// or later: unknown again at each connection, judged when next asked,
    /// and judged again every few seconds (`recheck_server`), since the
    /// client tells of a connection before it has the new server's details.
    server: Arc<AtomicU8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the NATS credentials file {0}: {1}")]
    Credentials(PathBuf, std::io::Error),
    #[error("cannot connect to NATS at {0}: {1}")]
    Connect(String, async_nats::ConnectError),
}

impl JetStream {
    pub async fn connect(settings: &NatsSettings) -> Result<Self, ConnectError> {
        let mut options = async_nats::ConnectOptions::new()
            .name("meshbroker")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(REQUEST_TIMEOUT);
        if let Some(path) = &settings.credentials_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| ConnectError::Credentials(path.clone(), e))?;
        }
        if let Some(ca) = &settings.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let server = Arc::new(AtomicU8::new(SERVER_UNKNOWN));
        let connected = server.clone();
        options = options.event_callback(move |event| {
            if matches!(event, async_nats::Event::Connected) {
                connected.store(SERVER_UNKNOWN, Ordering::Release);
            }
            std::future::ready(())
        });
        let client = options
            .connect(settings.url.as_str())
            .await
            .map_err(|e| ConnectError::Connect(settings.url.clone(), e))?;
        let context = jetstream::context::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Self {
            client,
            context,
            replicas: settings.replicas.max(1),
            server,
        })
    }

    /// Why nothing may be published now: NATS is away, or its server loses
    /// acknowledged messages (see `FIRST_SAFE_SERVER`).
    pub fn unusable(&self) -> Option<String> {
        if self.client.connection_state() != State::Connected {
            return Some("NATS is not reachable".into());
        }
        if self.server.load(Ordering::Acquire) == SERVER_SAFE {
            return None;
        }
        self.judge_server()
    }

    /// Judges the server again, so a verdict read from the server before
    /// a reconnection lasts no longer than until the next call.
    pub fn recheck_server(&self) {
        if self.client.connection_state() == State::Connected {
            let _ = self.judge_server();
        }
    }

    fn judge_server(&self) -> Option<String> {
        let version = self.client.server_info().version;
        if version.is_empty() {
            return Some("the NATS server has not told its version yet".into());
        }
        if is_safe_server(&version) {
            self.server.store(SERVER_SAFE, Ordering::Release);
            return None;
        }
        if self.server.swap(SERVER_UNSAFE, Ordering::AcqRel) != SERVER_UNSAFE {
            tracing::error!(%version, "this nats-server drops acknowledged events when a stream's budget fills (nats-server#4775, fixed in 2.10.7); the ingress answers 503 until meshbroker connects to 2.10.7 or later");
        }
        let (major, minor, patch) = FIRST_SAFE_SERVER;
        Some(format!(
            "nats-server {version} drops acknowledged events when a stream's budget fills \
             (nats-server#4775); meshbroker needs {major}.{minor}.{patch} or later"
        ))
    }
}

/// Whether `version` (`2.10.27`, `2.11.0-RC.1`) is `FIRST_SAFE_SERVER` or
/// later.
fn is_safe_server(version: &str) -> bool {
    let mut parts = version.split('.').map(|part| {
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        part[..digits].parse::<u64>().unwrap_or(0)
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next()) >= FIRST_SAFE_SERVER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_before_the_fix_for_dropped_messages_are_not_safe() {
        for safe in ["2.10.7", "2.10.27", "2.11.0-RC.1", "2.12.1", "3.0.0"] {
            assert!(is_safe_server(safe), "{safe}");
        }
        for unsafe_ in ["2.9.10", "2.10.6", "2.10.0-beta.1", "2.2.0", "", "two"] {
            assert!(!is_safe_server(unsafe_), "{unsafe_}");
        }
    }
}
