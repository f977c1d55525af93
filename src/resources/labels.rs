//! Labels and annotations meshbroker reads and writes on the objects it manages.

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
/// On a Trigger (durable delivery): replay what its Broker's log still holds
/// from this RFC 3339 time, instead of starting with the next event.
pub const REPLAY_FROM: &str = "meshbroker.io/replay-from";
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
/// On an EventType: the ServiceInstance (its name) that put it there.
pub const INSTANCE: &str = "meshbroker.io/instance";
/// On a ServiceInstance: its OSB instance id, when the id is not a valid name.
pub const INSTANCE_ID: &str = "meshbroker.io/instance-id";
