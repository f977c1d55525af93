//! The builder over in-memory inputs: what it compiles again and what it
//! keeps, and where changed Triggers route.

use super::*;
use crate::mesh::dispatch::testing;
use crate::resources::{Broker, Trigger};

fn application(generation: i64) -> Application {
    let mut application: Application = serde_json::from_value(serde_json::json!({
        "apiVersion": "applicationconnector.kyma-project.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "commerce", "uid": "u1", "generation": generation},
        "spec": {"services": [{"id": "s", "displayName": "S", "entries": [{"type": "Events",
            "specification": {"channels": {"order.created.v1": {"subscribe": {"message":
                {"payload": {"type": "object"}}}}}}}]}]}
    }))
    .expect("an Application");
    application.metadata.generation = Some(generation);
    application
}

fn inputs(applications: Vec<Application>) -> Inputs {
    let mut inputs = Inputs::default();
    for application in applications {
        inputs.put(application);
    }
    inputs
}

#[tokio::test]
async fn payload_schemas_are_compiled_once_per_generation_and_forgotten_with_the_application() {
    let mut builder = Builder::for_tests();
    let schemas = |table: &RoutingTable| table.applications["commerce"].schemas.clone();
    let first = schemas(&builder.build(&inputs(vec![application(1)])));
    assert_eq!(first.len(), 1);
    let again = schemas(&builder.build(&inputs(vec![application(1)])));
    assert!(
        Arc::ptr_eq(&first, &again),
        "a rebuild reuses the compiled schemas"
    );
    let changed = schemas(&builder.build(&inputs(vec![application(2)])));
    assert!(
        !Arc::ptr_eq(&first, &changed),
        "a new generation compiles again"
    );
    builder.build(&inputs(Vec::new()));
    assert!(
        builder.schemas.is_empty(),
        "a deleted Application's schemas go"
    );
}

const NAMESPACE: &str = "team-a";

fn broker_key(name: &str) -> Key {
    (NAMESPACE.to_string(), name.to_string())
}

fn broker(name: &str, resource_version: &str, retry: Option<i32>) -> Broker {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": format!("broker-{name}"),
                     "generation": retry.unwrap_or(0) + 1, "resourceVersion": resource_version},
        "spec": {"delivery": retry.map(|retry| serde_json::json!({"retry": retry}))},
        "status": {"address": {"url": format!("http://events.test/{NAMESPACE}/{name}")}}
    }))
    .expect("a Broker")
}

/// A Trigger of `broker` for events of type `ty`, its subscriber resolved.
struct TestTrigger {
    name: &'static str,
    broker: &'static str,
    uid: &'static str,
    generation: i64,
    resource_version: u64,
    ty: &'static str,
    dead_letter_sink: Option<&'static str>,
}

impl TestTrigger {
    fn new(name: &'static str, ty: &'static str) -> Self {
        Self {
            name,
            broker: "default",
            uid: name,
            generation: 1,
            resource_version: 10,
            ty,
            dead_letter_sink: None,
        }
    }

    fn build(&self) -> Trigger {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": self.name, "namespace": NAMESPACE, "uid": self.uid,
                         "generation": self.generation,
                         "resourceVersion": self.resource_version.to_string()},
            "spec": {"broker": self.broker, "filter": {"attributes": {"type": self.ty}},
                     "subscriber": {"uri": "http://sink/"}},
            "status": {"subscriberUri": "http://sink/", "deadLetterSinkUri": self.dead_letter_sink}
        }))
        .expect("a Trigger")
    }
}

/// The dispatchers a Broker's route hands an event of type `ty` to.
fn routed(table: &RoutingTable, broker: &str, ty: &str) -> Vec<Arc<Dispatcher>> {
    let metrics = crate::telemetry::Metrics::new();
    let event = testing::event(ty);
    table
        .broker(NAMESPACE, broker)
        .map(|route| {
            route
                .triggers
                .matching(&event.event, &metrics)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn filter_of(builder: &Builder, trigger: &str) -> Arc<crate::mesh::filter::Filter> {
    builder
        .brokers
        .filter_of(&broker_key("default"), trigger)
        .expect("the Trigger is routed")
}

#[tokio::test]
async fn a_status_write_keeps_the_compiled_filter_and_a_spec_change_compiles_it_again() {
    let mut builder = Builder::for_tests();
    let mut inputs = Inputs::default();
    inputs.put(broker("default", "1", None));
    let mut trigger = TestTrigger::new("t", "order.created");
    inputs.put(trigger.build());
    let first = builder.build(&inputs);
    let compiled = filter_of(&builder, "t");
    let [dispatcher] = &routed(&first, "default", "order.created")[..] else {
        panic!("one Trigger routes the event");
    };
    assert_eq!(dispatcher.target().policy.dead_letter_sink, None);

    // The status controller resolves a dead-letter sink: same spec, same generation.
    trigger.resource_version = 11;
    trigger.dead_letter_sink = Some("http://dls/");
    assert!(inputs.put(trigger.build()));
    let resolved = builder.build(&inputs);
    assert!(
        Arc::ptr_eq(&compiled, &filter_of(&builder, "t")),
        "a status write does not compile the filter again"
    );
    let [same] = &routed(&resolved, "default", "order.created")[..] else {
        panic!("still routed");
    };
    assert!(
        Arc::ptr_eq(dispatcher, same),
        "nor start another dispatcher"
    );
    assert_eq!(
        same.target().policy.dead_letter_sink.as_deref(),
        Some("http://dls/"),
        "the dispatcher is retargeted"
    );

    // Nothing changed: the Broker's route is the one already built.
    let again = builder.build(&inputs);
    assert!(Arc::ptr_eq(
        &resolved.brokers[&broker_key("default")],
        &again.brokers[&broker_key("default")]
    ));

    // A new spec: compiled again, and routing by it.
    trigger.resource_version = 12;
    trigger.generation = 2;
    trigger.ty = "order.cancelled";
    assert!(inputs.put(trigger.build()));
    let changed = builder.build(&inputs);
    assert!(
        !Arc::ptr_eq(&compiled, &filter_of(&builder, "t")),
        "a new generation compiles the filter again"
    );
    assert!(routed(&changed, "default", "order.created").is_empty());
    let [kept] = &routed(&changed, "default", "order.cancelled")[..] else {
        panic!("routed by the new filter");
    };
    assert!(
        Arc::ptr_eq(dispatcher, kept),
        "the same Trigger keeps its dispatcher and queue"
    );
}

#[tokio::test]
async fn a_broker_change_retargets_its_triggers_without_compiling_them_again() {
    let mut builder = Builder::for_tests();
    let mut inputs = Inputs::default();
    inputs.put(broker("default", "1", None));
    inputs.put(TestTrigger::new("t", "order.created").build());
    builder.build(&inputs);
    let compiled = filter_of(&builder, "t");

    assert!(inputs.put(broker("default", "2", Some(7))));
    let table = builder.build(&inputs);
    assert!(Arc::ptr_eq(&compiled, &filter_of(&builder, "t")));
    let [dispatcher] = &routed(&table, "default", "order.created")[..] else {
        panic!("still routed");
    };
    assert_eq!(
        dispatcher.target().policy.retry,
        7,
        "the Broker's delivery is its Triggers' default"
    );
}

#[tokio::test]
async fn a_change_to_one_broker_leaves_the_other_brokers_routes_as_built() {
    let mut builder = Builder::for_tests();
    let mut inputs = Inputs::default();
    inputs.put(broker("one", "1", None));
    inputs.put(broker("two", "2", None));
    let mut first = TestTrigger::new("first", "a");
    first.broker = "one";
    let mut second = TestTrigger::new("second", "b");
    second.broker = "two";
    inputs.put(first.build());
    inputs.put(second.build());
    let before = builder.build(&inputs);

    first.resource_version = 11;
    first.generation = 2;
    first.ty = "c";
    inputs.put(first.build());
    let after = builder.build(&inputs);
    assert!(!Arc::ptr_eq(
        &before.brokers[&broker_key("one")],
        &after.brokers[&broker_key("one")]
    ));
    assert!(Arc::ptr_eq(
        &before.brokers[&broker_key("two")],
        &after.brokers[&broker_key("two")]
    ));
}

#[tokio::test]
async fn a_deleted_trigger_leaves_its_broker_route_and_its_dispatcher_goes() {
    let mut builder = Builder::for_tests();
    let mut inputs = Inputs::default();
    inputs.put(broker("default", "1", None));
    let gone = TestTrigger::new("gone", "order.created").build();
    inputs.put(gone.clone());
    inputs.put(TestTrigger::new("stays", "order.cancelled").build());
    let table = builder.build(&inputs);
    let dispatcher = Arc::downgrade(&routed(&table, "default", "order.created")[0]);
    drop(table);

    assert!(inputs.triggers.remove(&key_of(&gone.metadata)));
    let table = builder.build(&inputs);
    assert!(routed(&table, "default", "order.created").is_empty());
    assert_eq!(routed(&table, "default", "order.cancelled").len(), 1);
    assert!(
        dispatcher.upgrade().is_none(),
        "no table or cache holds the deleted Trigger's dispatcher"
    );
}

#[tokio::test]
async fn a_trigger_deleted_and_created_again_for_another_broker_routes_there_only() {
    let mut builder = Builder::for_tests();
    let mut inputs = Inputs::default();
    inputs.put(broker("one", "1", None));
    inputs.put(broker("two", "2", None));
    let mut trigger = TestTrigger::new("t", "order.created");
    trigger.broker = "one";
    inputs.put(trigger.build());
    let before = builder.build(&inputs);
    let old = routed(&before, "one", "order.created");
    assert_eq!(old.len(), 1);

    // spec.broker is immutable: moving is deleting and creating (a new uid).
    assert!(inputs.triggers.remove(&key_of(&trigger.build().metadata)));
    trigger.broker = "two";
    trigger.uid = "t-again";
    trigger.resource_version = 11;
    inputs.put(trigger.build());
    let after = builder.build(&inputs);
    assert!(routed(&after, "one", "order.created").is_empty());
    let [moved] = &routed(&after, "two", "order.created")[..] else {
        panic!("routed by its new Broker");
    };
    assert!(
        !Arc::ptr_eq(moved, &old[0]),
        "a new object, a new dispatcher"
    );
    assert_eq!(
        moved.target().reply_to,
        Some(crate::mesh::dispatch::ReplyTo::Local {
            to: crate::mesh::dispatch::Local::Broker {
                namespace: NAMESPACE.into(),
                name: "two".into()
            },
            address: format!("http://events.test/{NAMESPACE}/two"),
        }),
        "its replies go to its new Broker"
    );
}
