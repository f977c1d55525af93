//! Configuration: every setting may come from a flag, an environment variable or
//! the YAML config file (in that order of precedence), and is validated once here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use super::CaBundle;
use super::connector::{self, ConnectorSettings, EventsTls, ServerCertificate};
use super::{ElectionSettings, NatsSettings};
use crate::resources::Usage;
use crate::telemetry::LogFormat;

/// Where resources live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite in the data directory.
    #[default]
    Embedded,
    /// A Kubernetes API server (in-cluster config, or the kubeconfig / KUBECONFIG).
    Kube,
}

/// Who serves Brokers, Channels and Triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneKind {
    /// meshbroker itself, on its events listener, and it writes their status.
    #[default]
    Embedded,
    /// Knative Eventing in the cluster; meshbroker writes the objects, waits for
    /// Knative to report them Ready, and forwards Application ingress to the
    /// Application's Channel. Needs `--store kube`.
    Knative,
}

/// What a 202 from an ingress means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    /// The event is in the event log on disk before the 202: it survives a
    /// crash and is delivered or dead-lettered (at least once).
    #[default]
    Durable,
    /// The event is queued in this process's memory: faster, and lost if the
    /// process dies before delivering it.
    Memory,
    /// The event is in NATS JetStream before the 202 (`--nats-url`): several
    /// meshbroker replicas share the logs and the deliveries.
    Jetstream,
}

/// When durable delivery's event log reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Before every 202 (one fsync covers every request that arrived
    /// meanwhile): a 202 survives a power loss.
    #[default]
    Always,
    /// Every 200 ms: a 202 survives the process being killed; a power loss may
    /// take the last 200 ms.
    Interval,
}

/// The settings as given; every field optional so flags, environment and file merge.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// YAML file with any of these settings (kebab-case keys); flags and environment win.
    #[arg(long, env = "MESHBROKER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where resources live: `embedded` (SQLite) or `kube` (a Kubernetes API server).
    #[arg(long, env = "MESHBROKER_STORE", value_enum)]
    pub store: Option<StoreKind>,
    /// Who serves Brokers, Channels and Triggers: `embedded` (meshbroker) or
    /// `knative` (Knative Eventing in the cluster; needs `--store kube`).
    #[arg(long, env = "MESHBROKER_DATAPLANE", value_enum)]
    pub dataplane: Option<DataplaneKind>,
    /// Address of the control listener (OSB API, resource API, health, metrics).
    #[arg(long, env = "MESHBROKER_CONTROL_ADDR")]
    pub control_addr: Option<SocketAddr>,
    /// Address of the events listener (the dataplane's ingress).
    #[arg(long, env = "MESHBROKER_EVENTS_ADDR")]
    pub events_addr: Option<SocketAddr>,
    /// Base URL under which others reach the events listener; Brokers, Channels and
    /// HTTPSources publish addresses under it. Default: http://<events-addr>.
    #[arg(long, env = "MESHBROKER_EVENTS_URL")]
    pub events_url: Option<String>,
    /// Directory for the embedded store and generated credentials.
    #[arg(long, env = "MESHBROKER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Namespace for Applications' Channels, HTTPSources and Subscriptions.
    #[arg(long, env = "MESHBROKER_INTEGRATION_NAMESPACE")]
    pub integration_namespace: Option<String>,
    /// Bearer token with full access; generated into the data directory when unset.
    #[arg(long, env = "MESHBROKER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// OSB basic-auth user name.
    #[arg(long, env = "MESHBROKER_OSB_USERNAME")]
    pub osb_username: Option<String>,
    /// OSB basic-auth password; generated into the data directory when unset.
    #[arg(long, env = "MESHBROKER_OSB_PASSWORD", hide_env_values = true)]
    pub osb_password: Option<String>,
    /// Log format.
    #[arg(long, env = "MESHBROKER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// How long a provision, update or deprovision without accepts_incomplete may
    /// take (e.g. "10s"); "0s" serves them asynchronously only (422 AsyncRequired).
    #[arg(long, env = "MESHBROKER_SYNC_WAIT")]
    pub sync_wait: Option<String>,
    /// How long an operation keeps retrying a step before it fails (e.g. "10m").
    #[arg(long, env = "MESHBROKER_OPERATION_TIMEOUT")]
    pub operation_timeout: Option<String>,
    /// How long a deprovisioned instance is remembered (e.g. "24h"): until then a
    /// poll of its deprovision by operation id answers succeeded; then it is forgotten.
    #[arg(long, env = "MESHBROKER_DEPROVISIONED_RETENTION")]
    pub deprovisioned_retention: Option<String>,
    /// Largest request body on the control listener, in bytes.
    #[arg(long, env = "MESHBROKER_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request body (one event or a batch) on the events listener, in bytes.
    #[arg(long, env = "MESHBROKER_MAX_EVENT_BYTES")]
    pub max_event_bytes: Option<usize>,
    /// Events one subscriber (a Trigger) may have waiting before the overflow
    /// policy applies.
    #[arg(long, env = "MESHBROKER_SUBSCRIBER_QUEUE")]
    pub subscriber_queue: Option<usize>,
    /// Bytes of events one subscriber's queue (and its deliveries) may hold;
    /// at or over it, the queue counts as full.
    #[arg(long, env = "MESHBROKER_SUBSCRIBER_QUEUE_BYTES")]
    pub subscriber_queue_bytes: Option<usize>,
    /// Deliveries one subscriber may have in flight at once.
    #[arg(long, env = "MESHBROKER_SUBSCRIBER_CONCURRENCY")]
    pub subscriber_concurrency: Option<usize>,
    /// Events one namespace may have waiting or in delivery across its subscribers.
    #[arg(long, env = "MESHBROKER_NAMESPACE_BUDGET")]
    pub namespace_budget: Option<usize>,
    /// Bytes of events one namespace may have waiting or in delivery across
    /// its subscribers (memory delivery; the others keep the backlog on disk).
    #[arg(long, env = "MESHBROKER_NAMESPACE_BUDGET_BYTES")]
    pub namespace_budget_bytes: Option<usize>,
    /// What a 202 means: `durable` (the event is on disk first), `memory`
    /// (queued in this process only: faster, lost on a crash) or `jetstream`
    /// (stored by NATS JetStream first).
    #[arg(long, env = "MESHBROKER_DELIVERY", value_enum)]
    pub delivery: Option<DeliveryKind>,
    /// Run the controllers and operations only while holding a Lease, so that
    /// several replicas can serve together (needs `--store kube`).
    #[arg(long, env = "MESHBROKER_LEADER_ELECT", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub leader_elect: Option<bool>,
    /// Leader election: the Lease's namespace. Default: $POD_NAMESPACE, else `default`.
    #[arg(long, env = "MESHBROKER_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Leader election: the Lease's name.
    #[arg(long, env = "MESHBROKER_LEADER_ELECTION_LEASE")]
    pub leader_election_lease: Option<String>,
    /// Leader election: this replica's name in the Lease. Default: $POD_NAME,
    /// else the host name and process id.
    #[arg(long, env = "MESHBROKER_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
    /// JetStream delivery: the NATS server(s), `nats://[user:password@]host:port`,
    /// several separated by commas.
    #[arg(long, env = "MESHBROKER_NATS_URL")]
    pub nats_url: Option<String>,
    /// JetStream delivery: a NATS credentials file (JWT and NKey seed).
    #[arg(long, env = "MESHBROKER_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// JetStream delivery: PEM CA certificates to trust the NATS server by (TLS).
    #[arg(long, env = "MESHBROKER_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// JetStream delivery: PEM client certificate for NATS servers that verify clients.
    #[arg(long, env = "MESHBROKER_NATS_TLS_CERT", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,
    /// JetStream delivery: the client certificate's PEM key.
    #[arg(long, env = "MESHBROKER_NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
    /// JetStream delivery: replicas of every stream in a NATS cluster (1, 3 or 5).
    #[arg(long, env = "MESHBROKER_NATS_REPLICAS")]
    pub nats_replicas: Option<usize>,
    /// Durable delivery: `always` (fsync before each 202) or `interval` (every
    /// 200 ms; survives a killed process, not a power loss).
    #[arg(long, env = "MESHBROKER_FSYNC", value_enum)]
    pub fsync: Option<Fsync>,
    /// Durable delivery: bytes of events one namespace's Brokers may hold on disk.
    #[arg(long, env = "MESHBROKER_NAMESPACE_DISK_BUDGET")]
    pub namespace_disk_budget: Option<u64>,
    /// Embedded store: objects a namespace may hold before its tokens may create no more.
    #[arg(long, env = "MESHBROKER_NAMESPACE_OBJECT_QUOTA")]
    pub namespace_object_quota: Option<u64>,
    /// Embedded store: bytes of objects a namespace may hold before its tokens may create no more.
    #[arg(long, env = "MESHBROKER_NAMESPACE_BYTES_QUOTA")]
    pub namespace_bytes_quota: Option<u64>,
    /// Durable delivery: bytes of events one Channel may hold on disk.
    #[arg(long, env = "MESHBROKER_CHANNEL_DISK_BUDGET")]
    pub channel_disk_budget: Option<u64>,
    /// Durable delivery: how long events stay in the log after every consumer
    /// passed them, for Triggers that ask to replay (e.g. "1h").
    #[arg(long, env = "MESHBROKER_EVENT_RETENTION")]
    pub event_retention: Option<String>,
    /// How long shutdown waits for accepted events to be delivered (e.g. "30s").
    #[arg(long, env = "MESHBROKER_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<String>,
    /// How long a request's headers may take to arrive, on both listeners;
    /// also how long a kept-alive connection may sit idle (e.g. "30s").
    #[arg(long, env = "MESHBROKER_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// How long a request's body may take to arrive whole after its headers (e.g. "60s").
    #[arg(long, env = "MESHBROKER_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<String>,
    /// How long an answer may wait for its client to take any of it (e.g. "30s").
    #[arg(long, env = "MESHBROKER_SEND_TIMEOUT")]
    pub send_timeout: Option<String>,
    /// Connections each listener holds open at once; more wait to be accepted.
    #[arg(long, env = "MESHBROKER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// PEM file of CA certificates that https:// subscribers and dead-letter sinks
    /// are trusted by, besides the system's roots.
    #[arg(long, env = "MESHBROKER_SUBSCRIBER_CA_BUNDLE")]
    pub subscriber_ca_bundle: Option<PathBuf>,
    /// Brokers and Channels outside the integration namespace accept events
    /// that come without a token (Knative's data plane: a Ready Broker's address
    /// "accepts all valid CloudEvents"); for trusted networks and conformance
    /// runs. A token that is sent is still checked.
    #[arg(long, env = "MESHBROKER_ANONYMOUS_SENDERS", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub anonymous_senders: Option<bool>,
    /// Serve the control listener (OSB, the resource API, the console) over
    /// TLS with this PEM certificate chain: kubectl sends its bearer token
    /// only over TLS.
    #[arg(
        long,
        env = "MESHBROKER_CONTROL_TLS_CERT",
        requires = "control_tls_key"
    )]
    pub control_tls_cert: Option<PathBuf>,
    /// The control listener's PEM private key.
    #[arg(
        long,
        env = "MESHBROKER_CONTROL_TLS_KEY",
        requires = "control_tls_cert"
    )]
    pub control_tls_key: Option<PathBuf>,
    /// Serve the events listener over TLS with this PEM certificate chain.
    #[arg(long, env = "MESHBROKER_EVENTS_TLS_CERT", requires = "events_tls_key")]
    pub events_tls_cert: Option<PathBuf>,
    /// The events listener's PEM private key.
    #[arg(long, env = "MESHBROKER_EVENTS_TLS_KEY", requires = "events_tls_cert")]
    pub events_tls_key: Option<PathBuf>,
    /// Serve the events listener over TLS with a certificate meshbroker's CA
    /// issues at start for these host names and IP addresses (comma-separated).
    #[arg(
        long,
        env = "MESHBROKER_EVENTS_TLS_HOSTS",
        conflicts_with = "events_tls_cert"
    )]
    pub events_tls_hosts: Option<String>,
    /// Applications must send with a Connector client certificate; their bearer
    /// tokens no longer open their ingress (needs TLS on the events listener).
    #[arg(long, env = "MESHBROKER_EVENTS_REQUIRE_CLIENT_CERT", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub events_require_client_cert: Option<bool>,
    /// The Connector's CA: an existing PEM certificate, instead of the one
    /// generated into the data directory (or the cluster's Secret).
    #[arg(
        long,
        env = "MESHBROKER_CONNECTOR_CA_CERT",
        requires = "connector_ca_key"
    )]
    pub connector_ca_cert: Option<PathBuf>,
    /// The existing CA's PEM private key.
    #[arg(
        long,
        env = "MESHBROKER_CONNECTOR_CA_KEY",
        requires = "connector_ca_cert"
    )]
    pub connector_ca_key: Option<PathBuf>,
    /// With `--store kube`: the Secret (`namespace/name`) holding the
    /// Connector's CA, shared by every replica. Default:
    /// `$POD_NAMESPACE/meshbroker-connector-ca`, else in `meshbroker-system`.
    #[arg(long, env = "MESHBROKER_CONNECTOR_CA_SECRET")]
    pub connector_ca_secret: Option<String>,
    /// How long a TokenRequest's one-time tokens work (e.g. "5m").
    #[arg(long, env = "MESHBROKER_CONNECTOR_TOKEN_TTL")]
    pub connector_token_ttl: Option<String>,
    /// How long a client certificate the Connector issues is valid (e.g. "92d").
    #[arg(long, env = "MESHBROKER_CONNECTOR_CERT_VALIDITY")]
    pub connector_cert_validity: Option<String>,
    /// The subject of client certificates but for the CN (the Application):
    /// `OU=…,O=…,L=…,ST=…,C=…`.
    #[arg(long, env = "MESHBROKER_CONNECTOR_SUBJECT")]
    pub connector_subject: Option<String>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    pub dataplane: DataplaneKind,
    pub control_addr: SocketAddr,
    pub events_addr: SocketAddr,
    pub events_url: Option<String>,
    pub data_dir: PathBuf,
    pub integration_namespace: String,
    pub admin_token: Option<String>,
    pub osb_username: String,
    pub osb_password: Option<String>,
    pub log_format: LogFormat,
    pub sync_wait: Duration,
    pub operation_timeout: Duration,
    pub deprovisioned_retention: Duration,
    pub max_body_bytes: usize,
    pub max_event_bytes: usize,
    pub subscriber_queue: usize,
    pub subscriber_queue_bytes: usize,
    pub subscriber_concurrency: usize,
    pub namespace_budget: usize,
    pub namespace_budget_bytes: usize,
    pub delivery: DeliveryKind,
    pub nats: NatsSettings,
    /// Several replicas: who leads, by a Lease. None: this process always leads.
    pub leader_election: Option<ElectionSettings>,
    pub fsync: Fsync,
    pub namespace_disk_budget: u64,
    pub channel_disk_budget: u64,
    /// What a namespace's tokens may fill it with (the embedded store).
    pub namespace_quota: Usage,
    pub event_retention: Duration,
    pub drain_timeout: Duration,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub send_timeout: Duration,
    pub max_connections: usize,
    pub subscriber_ca_bundle: Option<CaBundle>,
    /// Brokers and Channels outside the integration namespace take events
    /// without a token.
    pub anonymous_senders: bool,
    /// TLS on the control listener: PEM certificate chain and key files; None
    /// serves plain HTTP.
    pub control_tls: Option<ControlTls>,
    /// TLS on the events listener; None serves plain HTTP.
    pub events_tls: Option<EventsTls>,
    pub connector: ConnectorSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

impl Settings {
    /// Fills what flags and environment left unset from the config file, if any.
    pub fn with_file(self) -> Result<Self, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file: Settings = serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Settings {
            config: self.config,
            store: self.store.or(file.store),
            dataplane: self.dataplane.or(file.dataplane),
            control_addr: self.control_addr.or(file.control_addr),
            events_addr: self.events_addr.or(file.events_addr),
            events_url: self.events_url.or(file.events_url),
            data_dir: self.data_dir.or(file.data_dir),
            integration_namespace: self.integration_namespace.or(file.integration_namespace),
            admin_token: self.admin_token.or(file.admin_token),
            osb_username: self.osb_username.or(file.osb_username),
            osb_password: self.osb_password.or(file.osb_password),
            log_format: self.log_format.or(file.log_format),
            sync_wait: self.sync_wait.or(file.sync_wait),
            operation_timeout: self.operation_timeout.or(file.operation_timeout),
            deprovisioned_retention: self
                .deprovisioned_retention
                .or(file.deprovisioned_retention),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes),
            max_event_bytes: self.max_event_bytes.or(file.max_event_bytes),
            subscriber_queue: self.subscriber_queue.or(file.subscriber_queue),
            subscriber_queue_bytes: self.subscriber_queue_bytes.or(file.subscriber_queue_bytes),
            subscriber_concurrency: self.subscriber_concurrency.or(file.subscriber_concurrency),
            namespace_budget: self.namespace_budget.or(file.namespace_budget),
            namespace_budget_bytes: self.namespace_budget_bytes.or(file.namespace_budget_bytes),
            delivery: self.delivery.or(file.delivery),
            leader_elect: self.leader_elect.or(file.leader_elect),
            leader_election_namespace: self
                .leader_election_namespace
                .or(file.leader_election_namespace),
            leader_election_lease: self.leader_election_lease.or(file.leader_election_lease),
            leader_election_identity: self
                .leader_election_identity
                .or(file.leader_election_identity),
            nats_url: self.nats_url.or(file.nats_url),
            nats_creds: self.nats_creds.or(file.nats_creds),
            nats_tls_ca: self.nats_tls_ca.or(file.nats_tls_ca),
            nats_tls_cert: self.nats_tls_cert.or(file.nats_tls_cert),
            nats_tls_key: self.nats_tls_key.or(file.nats_tls_key),
            nats_replicas: self.nats_replicas.or(file.nats_replicas),
            fsync: self.fsync.or(file.fsync),
            namespace_disk_budget: self.namespace_disk_budget.or(file.namespace_disk_budget),
            namespace_object_quota: self.namespace_object_quota.or(file.namespace_object_quota),
            namespace_bytes_quota: self.namespace_bytes_quota.or(file.namespace_bytes_quota),
            channel_disk_budget: self.channel_disk_budget.or(file.channel_disk_budget),
            event_retention: self.event_retention.or(file.event_retention),
            drain_timeout: self.drain_timeout.or(file.drain_timeout),
            header_read_timeout: self.header_read_timeout.or(file.header_read_timeout),
            body_read_timeout: self.body_read_timeout.or(file.body_read_timeout),
            send_timeout: self.send_timeout.or(file.send_timeout),
            max_connections: self.max_connections.or(file.max_connections),
            subscriber_ca_bundle: self.subscriber_ca_bundle.or(file.subscriber_ca_bundle),
            anonymous_senders: self.anonymous_senders.or(file.anonymous_senders),
            control_tls_cert: self.control_tls_cert.or(file.control_tls_cert),
            control_tls_key: self.control_tls_key.or(file.control_tls_key),
            events_tls_cert: self.events_tls_cert.or(file.events_tls_cert),
            events_tls_key: self.events_tls_key.or(file.events_tls_key),
            events_tls_hosts: self.events_tls_hosts.or(file.events_tls_hosts),
            events_require_client_cert: self
                .events_require_client_cert
                .or(file.events_require_client_cert),
            connector_ca_cert: self.connector_ca_cert.or(file.connector_ca_cert),
            connector_ca_key: self.connector_ca_key.or(file.connector_ca_key),
            connector_ca_secret: self.connector_ca_secret.or(file.connector_ca_secret),
            connector_token_ttl: self.connector_token_ttl.or(file.connector_token_ttl),
            connector_cert_validity: self
                .connector_cert_validity
                .or(file.connector_cert_validity),
            connector_subject: self.connector_subject.or(file.connector_subject),
        })
    }

    pub fn build(self) -> Result<Config, ConfigError> {
        let settings = self.with_file()?;
        let delivery = settings.delivery.unwrap_or_default();
        let event_retention =
            duration("event-retention", settings.event_retention.as_deref(), "0s")?;
        let nats = nats_settings(&settings, delivery, event_retention)?;
        let leader_election = election_settings(&settings)?;
        let events_tls = events_tls(&settings)?;
        let control_tls = match (&settings.control_tls_cert, &settings.control_tls_key) {
            (Some(cert), Some(key)) => Some(ControlTls {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    setting: "control-tls-cert",
                    message: "--control-tls-cert and --control-tls-key go together".into(),
                });
            }
        };
        let connector = connector_settings(&settings)?;
        let integration_namespace = settings
            .integration_namespace
            .unwrap_or_else(|| "kyma-integration".to_string());
        if !crate::resources::is_valid_name(&integration_namespace)
            || integration_namespace.contains('.')
        {
            return Err(ConfigError::Invalid {
                setting: "integration-namespace",
                message: format!("{integration_namespace:?} is not a namespace name"),
            });
        }
        if let Some(url) = &settings.events_url
            && !crate::resources::is_absolute_http_uri(url)
        {
            return Err(ConfigError::Invalid {
                setting: "events-url",
                message: format!("{url:?} is not an absolute http(s) URL"),
            });
        }
        let store = settings.store.unwrap_or_default();
        let dataplane = settings.dataplane.unwrap_or_default();
        if dataplane == DataplaneKind::Knative && store != StoreKind::Kube {
            return Err(ConfigError::Invalid {
                setting: "dataplane",
                message: "knative needs --store kube: Knative serves only objects in a cluster"
                    .into(),
            });
        }
        for (setting, secret) in [
            ("admin-token", &settings.admin_token),
            ("osb-password", &settings.osb_password),
        ] {
            if secret.as_ref().is_some_and(|s| s.len() < 16) {
                return Err(ConfigError::Invalid {
                    setting,
                    message: "must be at least 16 characters".into(),
                });
            }
        }
        let subscriber_ca_bundle = settings
            .subscriber_ca_bundle
            .as_deref()
            .map(CaBundle::read)
            .transpose()
            .map_err(|message| ConfigError::Invalid {
                setting: "subscriber-ca-bundle",
                message,
            })?;
        Ok(Config {
            store,
            dataplane,
            control_addr: settings
                .control_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            events_addr: settings
                .events_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081))),
            events_url: settings
                .events_url
                .map(|u| u.trim_end_matches('/').to_string()),
            data_dir: settings
                .data_dir
                .unwrap_or_else(|| Path::new("meshbroker-data").to_path_buf()),
            integration_namespace,
            admin_token: settings.admin_token,
            osb_username: settings
                .osb_username
                .unwrap_or_else(|| "meshbroker".to_string()),
            osb_password: settings.osb_password,
            log_format: settings.log_format.unwrap_or_default(),
            sync_wait: duration("sync-wait", settings.sync_wait.as_deref(), "10s")?,
            operation_timeout: duration(
                "operation-timeout",
                settings.operation_timeout.as_deref(),
                "10m",
            )?,
            deprovisioned_retention: duration(
                "deprovisioned-retention",
                settings.deprovisioned_retention.as_deref(),
                "24h",
            )?,
            max_body_bytes: settings.max_body_bytes.unwrap_or(1 << 20),
            max_event_bytes: settings.max_event_bytes.unwrap_or(1 << 20),
            subscriber_queue: positive("subscriber-queue", settings.subscriber_queue, 1000)?,
            subscriber_queue_bytes: positive(
                "subscriber-queue-bytes",
                settings.subscriber_queue_bytes,
                64 << 20,
            )?,
            subscriber_concurrency: positive(
                "subscriber-concurrency",
                settings.subscriber_concurrency,
                64,
            )?,
            namespace_budget: positive("namespace-budget", settings.namespace_budget, 20_000)?,
            namespace_budget_bytes: positive(
                "namespace-budget-bytes",
                settings.namespace_budget_bytes,
                256 << 20,
            )?,
            delivery,
            nats,
            leader_election,
            fsync: settings.fsync.unwrap_or_default(),
            namespace_disk_budget: positive(
                "namespace-disk-budget",
                settings.namespace_disk_budget,
                1 << 30,
            )?,
            channel_disk_budget: positive(
                "channel-disk-budget",
                settings.channel_disk_budget,
                1 << 30,
            )?,
            namespace_quota: Usage {
                objects: positive(
                    "namespace-object-quota",
                    settings.namespace_object_quota,
                    10_000,
                )?,
                bytes: positive(
                    "namespace-bytes-quota",
                    settings.namespace_bytes_quota,
                    64 << 20,
                )?,
            },
            event_retention,
            drain_timeout: duration("drain-timeout", settings.drain_timeout.as_deref(), "30s")?,
            header_read_timeout: positive_duration(
                "header-read-timeout",
                settings.header_read_timeout.as_deref(),
                "30s",
            )?,
            body_read_timeout: positive_duration(
                "body-read-timeout",
                settings.body_read_timeout.as_deref(),
                "60s",
            )?,
            send_timeout: positive_duration(
                "send-timeout",
                settings.send_timeout.as_deref(),
                "30s",
            )?,
            max_connections: positive("max-connections", settings.max_connections, 8192)?,
            subscriber_ca_bundle,
            anonymous_senders: settings.anonymous_senders == Some(true),
            control_tls,
            events_tls,
            connector,
        })
    }
}

/// The control listener serves TLS with this certificate chain and key.
#[derive(Debug, Clone)]
pub struct ControlTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn events_tls(settings: &Settings) -> Result<Option<EventsTls>, ConfigError> {
    let certificate = match (
        &settings.events_tls_cert,
        &settings.events_tls_key,
        &settings.events_tls_hosts,
    ) {
        (Some(cert), Some(key), _) => Some(ServerCertificate::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (_, _, Some(hosts)) => {
            let hosts: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect();
            if hosts.is_empty() {
                return Err(ConfigError::Invalid {
                    setting: "events-tls-hosts",
                    message: "names no host".into(),
                });
            }
            Some(ServerCertificate::Issued { hosts })
        }
        _ => None,
    };
    let require_client_certificate = settings.events_require_client_cert == Some(true);
    match certificate {
        Some(certificate) => Ok(Some(EventsTls {
            certificate,
            require_client_certificate,
        })),
        None if require_client_certificate => Err(ConfigError::Invalid {
            setting: "events-require-client-cert",
            message: "needs TLS on the events listener (--events-tls-cert/--events-tls-key or --events-tls-hosts)".into(),
        }),
        None => Ok(None),
    }
}

fn connector_settings(settings: &Settings) -> Result<ConnectorSettings, ConfigError> {
    let subject_text = settings
        .connector_subject
        .as_deref()
        .unwrap_or(connector::DEFAULT_SUBJECT);
    let subject =
        connector::parse_subject(subject_text).map_err(|message| ConfigError::Invalid {
            setting: "connector-subject",
            message,
        })?;
    let token_ttl = duration(
        "connector-token-ttl",
        settings.connector_token_ttl.as_deref(),
        "5m",
    )?;
    let certificate_validity = duration(
        "connector-cert-validity",
        settings.connector_cert_validity.as_deref(),
        "92d",
    )?;
    for (setting, value) in [
        ("connector-token-ttl", token_ttl),
        ("connector-cert-validity", certificate_validity),
    ] {
        if value < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                setting,
                message: "must be at least 1s".into(),
            });
        }
    }
    let ca_secret = match &settings.connector_ca_secret {
        Some(written) => {
            connector::parse_secret_name(written).map_err(|message| ConfigError::Invalid {
                setting: "connector-ca-secret",
                message,
            })?
        }
        None => connector::default_secret_name(),
    };
    Ok(ConnectorSettings {
        ca_secret,
        ca_files: settings
            .connector_ca_cert
            .clone()
            .zip(settings.connector_ca_key.clone()),
        token_ttl,
        certificate_validity,
        subject,
    })
}

/// Leader election, when asked for.
fn election_settings(settings: &Settings) -> Result<Option<ElectionSettings>, ConfigError> {
    if settings.leader_elect != Some(true) {
        return Ok(None);
    }
    if settings.store != Some(StoreKind::Kube) {
        return Err(ConfigError::Invalid {
            setting: "leader-elect",
            message: "needs --store kube: replicas share the Kubernetes API server".into(),
        });
    }
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let identity = settings
        .leader_election_identity
        .clone()
        .or_else(|| from_env("POD_NAME"))
        .unwrap_or_else(|| {
            let host = from_env("HOSTNAME").unwrap_or_else(|| "meshbroker".into());
            format!("{host}-{}", std::process::id())
        });
    Ok(Some(ElectionSettings {
        namespace: settings
            .leader_election_namespace
            .clone()
            .or_else(|| from_env("POD_NAMESPACE"))
            .unwrap_or_else(|| "default".into()),
        lease: settings
            .leader_election_lease
            .clone()
            .unwrap_or_else(|| "meshbroker".into()),
        identity,
    }))
}

/// JetStream delivery's connection; the NATS flags say nothing otherwise.
fn nats_settings(
    settings: &Settings,
    delivery: DeliveryKind,
    event_retention: Duration,
) -> Result<NatsSettings, ConfigError> {
    if delivery != DeliveryKind::Jetstream {
        return Ok(NatsSettings::default());
    }
    let url = settings.nats_url.clone().ok_or(ConfigError::Invalid {
        setting: "nats-url",
        message: "--delivery jetstream needs the NATS server, e.g. nats://127.0.0.1:4222".into(),
    })?;
    if !event_retention.is_zero() {
        // Streams drop what every consumer acknowledged (interest retention);
        // keeping events longer would need age limits that could also drop
        // events not yet delivered.
        return Err(ConfigError::Invalid {
            setting: "event-retention",
            message: "is not supported with --delivery jetstream".into(),
        });
    }
    let replicas = settings.nats_replicas.unwrap_or(1);
    if !(1..=5).contains(&replicas) {
        return Err(ConfigError::Invalid {
            setting: "nats-replicas",
            message: "must be between 1 and 5 (JetStream's limit)".into(),
        });
    }
    Ok(NatsSettings {
        url,
        credentials_file: settings.nats_creds.clone(),
        tls_ca: settings.nats_tls_ca.clone(),
        tls_cert: settings.nats_tls_cert.clone(),
        tls_key: settings.nats_tls_key.clone(),
        replicas,
    })
}

/// A count or size that must not be zero; zero is the type's default.
fn positive<T: Copy + PartialEq + Default>(
    setting: &'static str,
    given: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match given {
        Some(value) if value == T::default() => Err(ConfigError::Invalid {
            setting,
            message: "must be at least 1".into(),
        }),
        Some(value) => Ok(value),
        None => Ok(default),
    }
}

/// Durations as people write them: "10s", "1m 30s", "250ms".
fn duration(
    setting: &'static str,
    given: Option<&str>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = given.unwrap_or(default);
    let invalid = |message: String| ConfigError::Invalid { setting, message };
    let span: jiff::Span = jiff::fmt::friendly::SpanParser::new()
        .parse_span(text)
        .map_err(|e| invalid(format!("{text:?} is not a duration like 10s: {e}")))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| invalid(e.to_string()))?;
    Duration::try_from(signed).map_err(|_| invalid(format!("{text:?} must not be negative")))
}

/// A duration that must not be zero (a zero timeout would refuse everything).
fn positive_duration(
    setting: &'static str,
    given: Option<&str>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let parsed = duration(setting, given, default)?;
    if parsed.is_zero() {
        return Err(ConfigError::Invalid {
            setting,
            message: "must be longer than zero".into(),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_on_loopback() {
        let config = Settings::default().build().expect("defaults are valid");
        assert_eq!(config.control_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.integration_namespace, "kyma-integration");
        assert_eq!(config.sync_wait, Duration::from_secs(10));
        assert_eq!(config.operation_timeout, Duration::from_secs(600));
        assert_eq!(
            config.deprovisioned_retention,
            Duration::from_secs(24 * 60 * 60)
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("meshbroker.yaml");
        std::fs::write(&file, "integration-namespace: from-file\nsync-wait: 3s\n").expect("write");
        let settings = Settings {
            config: Some(file),
            integration_namespace: Some("from-flag".into()),
            ..Default::default()
        };
        let config = settings.build().expect("valid");
        assert_eq!(config.integration_namespace, "from-flag");
        assert_eq!(config.sync_wait, Duration::from_secs(3));
    }

    #[test]
    fn switches_take_the_same_words_as_flags_and_in_the_file() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        use clap::Parser;
        for (word, on) in [
            ("yes", true),
            ("on", true),
            ("true", true),
            ("off", false),
            ("no", false),
        ] {
            let cli = Cli::try_parse_from(["meshbroker", &format!("--anonymous-senders={word}")])
                .expect("a switch's word");
            assert_eq!(cli.settings.anonymous_senders, Some(on), "{word}");
        }
        let bare = Cli::try_parse_from(["meshbroker", "--anonymous-senders"]).expect("bare");
        assert_eq!(bare.settings.anonymous_senders, Some(true));
        assert!(Cli::try_parse_from(["meshbroker", "--anonymous-senders=maybe"]).is_err());

        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("meshbroker.yaml");
        std::fs::write(&file, "anonymous-senders: on\n").expect("write");
        let settings = Settings {
            config: Some(file),
            ..Default::default()
        };
        assert!(settings.build().expect("valid").anonymous_senders);
    }

    #[test]
    fn bad_settings_are_named() {
        let short = Settings {
            admin_token: Some("short".into()),
            ..Default::default()
        };
        assert!(
            short
                .build()
                .expect_err("too short")
                .to_string()
                .starts_with("admin-token")
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, "no-such-setting: 1\n").expect("write");
        let unknown = Settings {
            config: Some(file),
            ..Default::default()
        };
        assert!(unknown.build().is_err());
    }

    #[test]
    fn a_subscriber_ca_bundle_from_the_file_that_cannot_be_read_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("meshbroker.yaml");
        std::fs::write(&file, "subscriber-ca-bundle: /nonexistent/ca.pem\n").expect("write");
        let settings = Settings {
            config: Some(file),
            ..Default::default()
        };
        let error = settings.build().expect_err("no such bundle").to_string();
        assert!(
            error.starts_with("subscriber-ca-bundle: /nonexistent/ca.pem: cannot read it"),
            "{error}"
        );
    }

    fn refusal(settings: Settings) -> String {
        settings.build().expect_err("refused").to_string()
    }

    #[test]
    fn jetstream_delivery_needs_a_nats_url_and_sane_replicas_and_no_retention() {
        let jetstream = || Settings {
            delivery: Some(DeliveryKind::Jetstream),
            nats_url: Some("nats://127.0.0.1:4222".into()),
            ..Default::default()
        };
        let config = jetstream().build().expect("valid");
        assert_eq!(config.nats.url, "nats://127.0.0.1:4222");
        assert_eq!(config.nats.replicas, 1);
        let no_url = Settings {
            nats_url: None,
            ..jetstream()
        };
        assert!(refusal(no_url).starts_with("nats-url:"));
        for replicas in [0, 6] {
            let wrong = Settings {
                nats_replicas: Some(replicas),
                ..jetstream()
            };
            assert!(refusal(wrong).starts_with("nats-replicas:"), "{replicas}");
        }
        let retained = Settings {
            event_retention: Some("1h".into()),
            ..jetstream()
        };
        assert!(refusal(retained).starts_with("event-retention:"));
        // The NATS flags mean nothing to the other modes.
        let durable = Settings {
            nats_replicas: Some(9),
            ..Default::default()
        };
        assert!(durable.build().is_ok());
    }

    #[test]
    fn leader_election_needs_the_kube_store_and_names_its_lease() {
        let elect = Settings {
            leader_elect: Some(true),
            store: Some(StoreKind::Kube),
            leader_election_namespace: Some("meshbroker-system".into()),
            leader_election_identity: Some("replica-0".into()),
            ..Default::default()
        };
        let election = elect
            .build()
            .expect("valid")
            .leader_election
            .expect("elected");
        assert_eq!(election.namespace, "meshbroker-system");
        assert_eq!(election.lease, "meshbroker");
        assert_eq!(election.identity, "replica-0");
        let embedded = Settings {
            leader_elect: Some(true),
            ..Default::default()
        };
        assert!(refusal(embedded).starts_with("leader-elect:"));
        assert!(
            Settings::default()
                .build()
                .expect("valid")
                .leader_election
                .is_none()
        );
    }
}
