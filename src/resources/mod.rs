//! Typed Kubernetes-shaped kinds meshbroker stores and serves, their status
//! conditions, and the registry the resource API and store use to find a kind by its
//! group/version/plural. Validation of every kind lives with the kind. Nothing here
//! reads or writes the store.

mod access_token;
mod application;
pub(crate) mod condition;
mod connector;
pub mod crds;
mod destination;
mod duration;
mod event_type;
mod eventing;
mod instance;
mod invalid;
pub mod labels;
mod messaging;
mod names;
mod payload_schema;
mod registry;
mod source;
mod status;
mod usage;

pub use access_token::{AccessToken, AccessTokenSpec, AccessTokenStatus};
pub use application::{
    Application, ApplicationMapping, ApplicationMappingSpec, ApplicationService, ApplicationSpec,
    ApplicationStatus, EventType, MappedService, ServiceEntry,
};
pub use condition::{Condition, ConditionStatus, Conditions};
pub use connector::{
    CertificateRevocation, CertificateRevocationSpec, TokenRequest, TokenRequestContext,
    TokenRequestStatus, normalized_fingerprint, token_state,
};
pub use destination::{Addressable, Destination, KReference, is_absolute_http_uri, port_of};
pub use duration::parse_iso8601_duration;
pub use event_type::{EventTypeSpec, EventTypeStatus, KnativeEventType};
pub use eventing::{
    BackoffPolicy, Broker, BrokerSpec, BrokerStatus, DEFAULT_BACKOFF_DELAY, DEFAULT_RETRY,
    DEFAULT_TIMEOUT, DeliveryFormat, DeliverySpec, Dialect, SubscriptionsApiFilter, Trigger,
    TriggerFilter, TriggerSpec, TriggerStatus, missing_function,
};
pub use instance::{
    Binding, Operation, OperationKind, OperationState, ServiceInstance, ServiceInstanceSpec,
    ServiceInstanceStatus, parameters_requested,
};
pub use invalid::Invalid;
pub use messaging::{
    Channel, ChannelSpec, ChannelStatus, ChannelTemplate, PhysicalSubscription, SubscriberSpec,
    Subscription, SubscriptionSpec, SubscriptionStatus,
};
pub use names::{
    check_label_key, check_name, is_attribute_name, is_label_value, is_valid_name, route_collision,
};
pub use payload_schema::PayloadSchema;
pub use registry::{
    Access, Defaults, KindSpec, Refusal, Typed, kind_by_path, kind_of, kinds, namespace_kind,
};
pub use source::{HttpSource, HttpSourceSpec, HttpSourceStatus};
pub use status::{AddressableStatus, SubscriberStatus};
pub use usage::Usage;
