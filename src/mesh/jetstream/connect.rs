//! The NATS connection: options as NATS clients take them (URL with user and
//! password or token, a credentials file, TLS), connecting in the background
//! and reconnecting for ever, so meshbroker starts and recovers while NATS
//! is away (its ingress answers 503 meanwhile).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, Context};

use crate::config::NatsSettings;

/// How long a JetStream request (a publish acknowledgement, a stream or
/// consumer change) may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct JetStream {
    client: async_nats::Client,
    pub context: Context,
    pub replicas: usize,
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
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}
