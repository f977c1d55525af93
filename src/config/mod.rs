//! What the operator asked for: every setting from a flag, an environment variable
//! or the YAML config file, validated once into the `Config` the server runs with.

mod ca_bundle;
mod connector;
mod replicas;
mod settings;

pub use ca_bundle::CaBundle;
pub use connector::{ConnectorSettings, EventsTls, ServerCertificate};
pub use replicas::{ElectionSettings, NatsSettings};
pub use settings::{Config, ControlTls, DataplaneKind, DeliveryKind, Fsync, Settings, StoreKind};
