//! Typed Kubernetes-shaped kinds meshbroker stores and serves, their status
//! conditions, and the registry the resource API and store use to find a kind by its
//! group/version/plural. Validation of every kind lives with the kind. Nothing here
//! reads or writes the store.

mod access_token;
mod application;
pub(crate) mod condition;
pub mod crds;
mod destination;
mod duration;
mod eventing;
mod instance;
mod invalid;
mod messaging;
mod names;
mod registry;
mod source;
mod status;

pub use access_token::{AccessToken, AccessTokenSpec, AccessTokenStatus};
pub use application::{
    Application, ApplicationMapping, ApplicationMappingSpec, ApplicationService, ApplicationSpec,
    ApplicationStatus, EventType, MappedService, ServiceEntry,
};
pub use condition::{Condition, ConditionStatus, Conditions};
pub use destination::{Addressable, Destination, KReference, is_absolute_http_uri};
pub use duration::parse_iso8601_duration;
pub use eventing::{
    BackoffPolicy, Broker, BrokerSpec, BrokerStatus, DeliveryFormat, DeliverySpec,
    SubscriptionsApiFilter, Trigger, TriggerFilter, TriggerSpec, TriggerStatus,
};
pub use instance::{
    Binding, Operation, OperationKind, OperationState, ServiceInstance, ServiceInstanceSpec,
    ServiceInstanceStatus,
};
pub use invalid::Invalid;
pub use messaging::{
    Channel, ChannelSpec, ChannelStatus, ChannelTemplate, PhysicalSubscription, Subscription,
    SubscriptionSpec, SubscriptionStatus,
};
pub use names::{is_label_value, is_valid_name, route_collision};
pub use registry::{
    Access, Defaults, KindSpec, Refusal, Typed, kind_by_path, kind_of, namespace_kind,
};
pub use source::{HttpSource, HttpSourceSpec, HttpSourceStatus};
pub use status::AddressableStatus;

/// Labels and annotations meshbroker reads and writes on the objects it manages.
pub mod labels {
    /// Marks a namespace as part of the mesh; its default Broker follows.
    pub const INJECTION: &str = "knative-eventing-injection";
    pub const INJECTION_ENABLED: &str = "enabled";
    /// Names the Application a Channel, HTTPSource or Subscription belongs to.
    pub const APPLICATION_NAME: &str = "application-name";
    /// Set on every object meshbroker created, so it never deletes what it did not.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "meshbroker";
    /// On a Namespace: meshbroker, not a person, set the injection label.
    pub const LABELLED_BY_MESHBROKER: &str = "meshbroker.io/injection-labelled";
    /// On a Subscription: the OSB instances that need it (a JSON array of ids).
    pub const SUBSCRIPTION_OWNERS: &str = "meshbroker.io/instances";
    /// On a Subscription: the namespace whose Broker it feeds.
    pub const TARGET_NAMESPACE: &str = "meshbroker.io/target-namespace";
    /// On a Broker: the broker class, as Knative expects it.
    pub const BROKER_CLASS: &str = "eventing.knative.dev/broker.class";
    pub const BROKER_CLASS_VALUE: &str = "MeshBroker";
    /// The class of the Brokers meshbroker installs for Knative to serve.
    pub const KNATIVE_BROKER_CLASS: &str = "MTChannelBasedBroker";

    /// The class of the Brokers meshbroker makes (injected into a mesh namespace, or
    /// a Broker written without one): its own when its embedded dataplane serves
    /// them, Knative's when Knative does.
    pub fn broker_class(embedded_dataplane: bool) -> &'static str {
        if embedded_dataplane {
            BROKER_CLASS_VALUE
        } else {
            KNATIVE_BROKER_CLASS
        }
    }
    /// On a ServiceInstance: its OSB instance id, when the id is not a valid name.
    pub const INSTANCE_ID: &str = "meshbroker.io/instance-id";
}
