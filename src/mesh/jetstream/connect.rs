//! The NATS connection: options as NATS clients take them (URL with user and
//! password or token, a credentials file, TLS), connecting in the background
//! and reconnecting for ever, so meshbroker starts and recovers while NATS
//! is away (its ingress answers 503 meanwhile).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
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

pub struct JetStream {
    client: async_nats::Client,
    pub context: Context,
    pub replicas: usize,
    /// Whether the server of the current connection is `FIRST_SAFE_SERVER`
    /// or later: checked each time the client connects.
    safe_server: Arc<AtomicBool>,
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
        let safe_server = Arc::new(AtomicBool::new(false));
        let connected: Arc<OnceLock<async_nats::Client>> = Arc::new(OnceLock::new());
        let (safe, slot) = (safe_server.clone(), connected.clone());
        options = options.event_callback(move |event| {
            if matches!(event, async_nats::Event::Connected)
                && let Some(client) = slot.get()
            {
                check_server(client, &safe);
            }
            std::future::ready(())
        });
        let client = options
            .connect(settings.url.as_str())
            .await
            .map_err(|e| ConnectError::Connect(settings.url.clone(), e))?;
        // A connection made before the slot was filled is checked here.
        let _ = connected.set(client.clone());
        if client.connection_state() == State::Connected {
            check_server(&client, &safe_server);
        }
        let context = jetstream::context::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Self {
            client,
            context,
            replicas: settings.replicas.max(1),
            safe_server,
        })
    }

    /// Why nothing may be published now: NATS is away, or its server loses
    /// acknowledged messages (see `FIRST_SAFE_SERVER`).
    pub fn unusable(&self) -> Option<String> {
        if self.client.connection_state() != State::Connected {
            return Some("NATS is not reachable".into());
        }
        if !self.safe_server.load(Ordering::Acquire) {
            let (major, minor, patch) = FIRST_SAFE_SERVER;
            return Some(format!(
                "nats-server {} drops acknowledged events when a stream's budget fills \
                 (nats-server#4775); meshbroker needs {major}.{minor}.{patch} or later",
                self.client.server_info().version
            ));
        }
        None
    }
}

fn check_server(client: &async_nats::Client, safe: &AtomicBool) {
    let version = client.server_info().version;
    let fits = is_safe_server(&version);
    if !fits {
        tracing::error!(%version, "this nats-server drops acknowledged events when a stream's budget fills (nats-server#4775, fixed in 2.10.7); the ingress answers 503 until meshbroker connects to 2.10.7 or later");
    }
    safe.store(fits, Ordering::Release);
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
