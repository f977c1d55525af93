//! Status for what the embedded dataplane serves, with the condition types Knative
//! reports for each kind, so kubectl and Knative tooling read them as they would
//! Knative's own. `Ready` summarises the other conditions (Knative's living
//! condition set) and is True only once the routing table routes the object as it
//! was read: Ready means events flow now. HTTPSources get their ingress URL.
//! Status is written only when it changed; nothing here touches the routing table.
//!
//! The condition types, and what they mean here:
//!
//! | kind | condition | True when |
//! |---|---|---|
//! | Broker | `Addressable` | its address on the events listener is published |
//! | | `IngressReady`, `TriggerChannelReady`, `FilterReady` | its route is in the routing table (the route is ingress, in-process trigger fan-out and filters at once; there is no trigger Channel object) |
//! | | `DeadLetterSinkResolved` | `spec.delivery.deadLetterSink` resolves, or none is set |
//! | Channel | `Addressable` | as for a Broker |
//! | | `BackingChannelReady` | its kind is served and its route is in the table (Knative's Channel reports its backing InMemoryChannel here; the embedded dataplane is ours) |
//! | | `DeadLetterSinkResolved` | as for a Broker |
//! | Trigger | `BrokerReady` | its Broker is Ready (the Broker's own Ready propagated) |
//! | | `SubscriberResolved` | `status.subscriberUri` is resolved |
//! | | `DeadLetterSinkResolved` | its own dead-letter sink, or its Broker's `status.deadLetterSinkUri`, resolves |
//! | | `SubscriptionReady` | the Broker's route delivers to it (Knative's Trigger → Subscription) |
//! | | `DependencyReady` | always: the `knative.dev/dependency` annotation is not tracked |
//! | Subscription | `ReferencesResolved` | the Channel exists and subscriber, reply and dead-letter sink resolve |
//! | | `ChannelReady` | its Channel is Ready |
//! | | `AddedToChannel` | the Channel's route delivers to it |
//! | | `DeadLetterSinkResolved` | meshbroker's addition (Knative folds it into `ReferencesResolved`) |
//!
//! Knative's feature-gated `OIDCIdentityCreated` and `EventPoliciesReady` are not
//! reported: meshbroker has neither feature.

mod addressable;
mod conditions;
mod http_source;
mod served;
mod start;
mod subscription;
mod trigger;
mod writer;

pub use start::start;
