//! How meshbroker reaches what several replicas share: the NATS server(s)
//! keeping JetStream delivery's logs, and the Lease that elects their leader.

use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct NatsSettings {
    /// `nats://[user:password@]host:port`, several separated by commas.
    pub url: String,
    pub credentials_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust the server with; implies TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Replicas of every stream (a NATS cluster's nodes that keep each).
    pub replicas: usize,
}

#[derive(Debug, Clone)]
pub struct ElectionSettings {
    pub namespace: String,
    /// The Lease's name.
    pub lease: String,
    /// This replica, as the Lease names its holder.
    pub identity: String,
}
