//! The lifecycle rules of the Knative control-plane contract and the CloudEvents
//! Subscriptions API, one test per rule: fields fixed once an object exists (a
//! Trigger's Broker, a Subscription's Channel, a Channel's template, a Broker's
//! class and config), a Subscription's Channel in its own namespace, the default
//! Broker class, filter names and values, and delivery durations (in the
//! resource API and in the OSB parameters that become a Subscription's
//! `delivery`).

use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::{Broker, Reply, Resources};

const NAMESPACE: &str = "team-a";
const CLASS: &str = "eventing.knative.dev/broker.class";
const CLASS_FIELD: &str = "metadata.annotations[eventing.knative.dev/broker.class]";
const INSTANCE: &str = "5c7e0a2b-1d3f-4e5a-8b6c-7d8e9f0a1b2c";

fn subscriptions_in(namespace: &str) -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{namespace}/subscriptions")
}

fn channels_in(namespace: &str) -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{namespace}/channels")
}

fn trigger(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": name}, "spec": spec})
}

fn trigger_to(broker: &str) -> Value {
    trigger(
        "t",
        json!({"broker": broker, "subscriber": {"uri": "http://127.0.0.1:9/sink"}}),
    )
}

fn broker_object(name: &str, annotations: Value, spec: Value) -> Value {
    json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
           "metadata": {"name": name, "annotations": annotations}, "spec": spec})
}

fn channel_ref(name: &str) -> Value {
    json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "name": name})
}

fn subscription(channel: Value) -> Value {
    json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": "s"},
           "spec": {"channel": channel, "subscriber": {"uri": "http://127.0.0.1:9/sink"}}})
}

/// A broker with the namespace the objects of these tests live in.
async fn start() -> Broker {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    broker
}

/// The reply is a `Status` with `status`, naming `field` as its cause.
fn refused(reply: &Reply, status: u16, field: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.body["details"]["causes"][0]["field"], field,
        "{}",
        reply.text
    );
}

/// A PUT at the stored object's resourceVersion (a replace that names none
/// is refused), or a create where there is none; read again and retried (a
/// few times) when a controller wrote the object's status in between, as a
/// client does on 409.
async fn put(admin: &Resources<'_>, path: &str, object: &Value) -> Reply {
    let mut object = object.clone();
    let mut attempts = 0;
    loop {
        if let Some(stored) = admin.find(path).await {
            object["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
        }
        let reply = admin.put(path, &object).await;
        attempts += 1;
        if reply.status != 409 || attempts == 5 {
            return reply;
        }
    }
}

fn created(reply: &Reply) {
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[tokio::test]
async fn trigger_broker_is_immutable() {
    let broker = start().await;
    let admin = broker.admin();
    created(
        &admin
            .create(&triggers(NAMESPACE), &trigger_to("default"))
            .await,
    );
    let path = format!("{}/t", triggers(NAMESPACE));
    let moved = put(&admin, &path, &trigger_to("other")).await;
    refused(&moved, 422, "spec.broker");
    assert_eq!(moved.message(), "spec.broker: field is immutable");
    let mut resubscribed = trigger_to("default");
    resubscribed["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:9/other");
    let replaced = put(&admin, &path, &resubscribed).await;
    assert_eq!(
        replaced.status, 200,
        "other fields may change: {}",
        replaced.text
    );
    assert_eq!(replaced.body["spec"]["broker"], "default");
}

#[tokio::test]
async fn subscription_channel_is_immutable() {
    let broker = start().await;
    let admin = broker.admin();
    let collection = subscriptions_in(NAMESPACE);
    created(
        &admin
            .create(&collection, &subscription(channel_ref("orders")))
            .await,
    );
    let path = format!("{collection}/s");
    let moved = put(&admin, &path, &subscription(channel_ref("payments"))).await;
    refused(&moved, 422, "spec.channel");
    let mut retyped = channel_ref("orders");
    retyped["kind"] = json!("InMemoryChannel");
    refused(
        &put(&admin, &path, &subscription(retyped)).await,
        422,
        "spec.channel",
    );
    let mut redelivered = subscription(channel_ref("orders"));
    redelivered["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:9/other");
    redelivered["spec"]["delivery"] = json!({"retry": 5});
    let replaced = put(&admin, &path, &redelivered).await;
    assert_eq!(
        replaced.status, 200,
        "other fields may change: {}",
        replaced.text
    );
    assert_eq!(replaced.body["spec"]["channel"]["name"], "orders");
}

#[tokio::test]
async fn channel_template_is_immutable() {
    let broker = start().await;
    let admin = broker.admin();
    let collection = channels_in(NAMESPACE);
    let template = |kind: &str| {
        json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"},
               "spec": {"channelTemplate": {"apiVersion": "messaging.knative.dev/v1", "kind": kind}}})
    };
    created(
        &admin
            .create(&collection, &template("InMemoryChannel"))
            .await,
    );
    let path = format!("{collection}/c");
    refused(
        &put(&admin, &path, &template("KafkaChannel")).await,
        422,
        "spec.channelTemplate",
    );
    let mut configured = template("InMemoryChannel");
    configured["spec"]["channelTemplate"]["spec"] = json!({"capacity": 10});
    refused(
        &put(&admin, &path, &configured).await,
        422,
        "spec.channelTemplate",
    );
    let mut other_group = template("InMemoryChannel");
    other_group["spec"]["channelTemplate"]["apiVersion"] = json!("example.com/v1");
    refused(
        &put(&admin, &path, &other_group).await,
        422,
        "spec.channelTemplate",
    );
    // Written without a template, a Channel gets the default one (Knative
    // RECOMMENDS defaulting), on a replace too: so the manifest it was made
    // from can be applied again.
    let mut untemplated = template("InMemoryChannel");
    untemplated["spec"] = json!({});
    let replaced = put(&admin, &path, &untemplated).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    untemplated["metadata"]["name"] = json!("plain");
    let made = admin.create(&collection, &untemplated).await;
    created(&made);
    assert_eq!(
        made.body["spec"]["channelTemplate"],
        json!({"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"})
    );
    let mut kafka = template("KafkaChannel");
    kafka["metadata"]["name"] = json!("plain");
    refused(
        &put(&admin, &format!("{collection}/plain"), &kafka).await,
        422,
        "spec.channelTemplate",
    );
    let mut redelivered = template("InMemoryChannel");
    redelivered["spec"]["delivery"] = json!({"retry": 5});
    let replaced = put(&admin, &path, &redelivered).await;
    assert_eq!(
        replaced.status, 200,
        "its delivery may change: {}",
        replaced.text
    );
}

#[tokio::test]
async fn subscription_channel_in_another_namespace_is_refused() {
    let broker = start().await;
    let admin = broker.admin();
    let collection = subscriptions_in(NAMESPACE);
    let mut elsewhere = channel_ref(APPLICATION);
    elsewhere["namespace"] = json!(INTEGRATION);
    let reply = admin
        .create(&collection, &subscription(elsewhere.clone()))
        .await;
    refused(&reply, 422, "spec.channel.namespace");
    let put = put(&admin, &format!("{collection}/s"), &subscription(elsewhere)).await;
    refused(&put, 422, "spec.channel.namespace");
    let mut here = channel_ref("orders");
    here["namespace"] = json!(NAMESPACE);
    created(&admin.create(&collection, &subscription(here)).await);
}

#[tokio::test]
async fn brokers_made_by_hand_get_the_default_class() {
    let broker = start().await;
    let admin = broker.admin();
    let collection = brokers(NAMESPACE);
    let made = admin
        .create(
            &collection,
            &broker_object("b", json!({"team": "a"}), json!({})),
        )
        .await;
    created(&made);
    assert_eq!(made.body["metadata"]["annotations"][CLASS], "MeshBroker");
    assert_eq!(made.body["metadata"]["annotations"]["team"], "a");
    let stored = admin
        .find(&format!("{collection}/b"))
        .await
        .expect("Broker b");
    assert_eq!(stored["metadata"]["annotations"][CLASS], "MeshBroker");
    let put_made = put(
        &admin,
        &format!("{collection}/c"),
        &broker_object("c", Value::Null, json!({})),
    )
    .await;
    created(&put_made);
    assert_eq!(
        put_made.body["metadata"]["annotations"][CLASS],
        "MeshBroker"
    );
    let chosen = admin
        .create(
            &collection,
            &broker_object("d", json!({CLASS: "MTChannelBasedBroker"}), json!({})),
        )
        .await;
    created(&chosen);
    assert_eq!(
        chosen.body["metadata"]["annotations"][CLASS], "MTChannelBasedBroker",
        "a chosen class is kept"
    );
}

#[tokio::test]
async fn broker_class_is_immutable() {
    let broker = start().await;
    let admin = broker.admin();
    let path = format!("{}/b", brokers(NAMESPACE));
    created(
        &admin
            .create(
                &brokers(NAMESPACE),
                &broker_object("b", json!({}), json!({})),
            )
            .await,
    );
    let reclassed = broker_object("b", json!({CLASS: "MTChannelBasedBroker"}), json!({}));
    let reply = put(&admin, &path, &reclassed).await;
    refused(&reply, 422, CLASS_FIELD);
    assert_eq!(
        reply.message(),
        format!("{CLASS_FIELD}: field is immutable")
    );
    let unannotated = broker_object("b", json!({}), json!({"delivery": {"retry": 1}}));
    let replaced = put(&admin, &path, &unannotated).await;
    assert_eq!(
        replaced.status, 200,
        "a replace without the class keeps it: {}",
        replaced.text
    );
    assert_eq!(
        replaced.body["metadata"]["annotations"][CLASS],
        "MeshBroker"
    );
}

#[tokio::test]
async fn broker_config_is_immutable() {
    let broker = start().await;
    let admin = broker.admin();
    let path = format!("{}/b", brokers(NAMESPACE));
    let config = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": name});
    created(
        &admin
            .create(
                &brokers(NAMESPACE),
                &broker_object("b", json!({}), json!({"config": config("broker-config")})),
            )
            .await,
    );
    for spec in [json!({"config": config("other-config")}), json!({})] {
        let reply = put(&admin, &path, &broker_object("b", json!({}), spec)).await;
        refused(&reply, 422, "spec.config");
    }
    let redelivered = json!({"config": config("broker-config"), "delivery": {"retry": 1}});
    let replaced = put(&admin, &path, &broker_object("b", json!({}), redelivered)).await;
    assert_eq!(
        replaced.status, 200,
        "other fields may change: {}",
        replaced.text
    );
}

#[tokio::test]
async fn exact_prefix_and_suffix_refuse_empty_names_and_values() {
    let broker = start().await;
    let cases = [
        (json!({"exact": {"type": ""}}), "spec.filters[0].exact.type"),
        (
            json!({"prefix": {"type": ""}}),
            "spec.filters[0].prefix.type",
        ),
        (
            json!({"suffix": {"type": ""}}),
            "spec.filters[0].suffix.type",
        ),
        (
            json!({"exact": {"": "order.created"}}),
            "spec.filters[0].exact",
        ),
        (json!({"prefix": {"": "order."}}), "spec.filters[0].prefix"),
        (
            json!({"suffix": {"": ".created"}}),
            "spec.filters[0].suffix",
        ),
        (
            json!({"any": [{"exact": {"type": "a"}}, {"exact": {"source": ""}}]}),
            "spec.filters[0].any[1].exact.source",
        ),
    ];
    for (filter, field) in cases {
        let spec = json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/sink"}, "filters": [filter]});
        let reply = broker
            .admin()
            .create(&triggers(NAMESPACE), &trigger("t", spec))
            .await;
        refused(&reply, 422, field);
    }
}

#[tokio::test]
async fn filter_attribute_names_are_cloudevents_attribute_names() {
    let broker = start().await;
    let refused_cases = [
        (
            json!({"filter": {"attributes": {"": "x"}}}),
            "spec.filter.attributes",
        ),
        (
            json!({"filter": {"attributes": {"Type": "x"}}}),
            "spec.filter.attributes.Type",
        ),
        (
            json!({"filter": {"attributes": {"event_type": ""}}}),
            "spec.filter.attributes.event_type",
        ),
        (
            json!({"filters": [{"exact": {"event-type": "x"}}]}),
            "spec.filters[0].exact.event-type",
        ),
        (
            json!({"filter": {"attributes": {"2fa": "on"}}}),
            "spec.filter.attributes.2fa",
        ),
        (
            json!({"filters": [{"prefix": {"2fa": "o"}}]}),
            "spec.filters[0].prefix.2fa",
        ),
    ];
    let with_subscriber = |mut spec: Value| {
        spec["broker"] = json!("default");
        spec["subscriber"] = json!({"uri": "http://127.0.0.1:9/sink"});
        spec
    };
    for (spec, field) in refused_cases {
        let reply = broker
            .admin()
            .create(&triggers(NAMESPACE), &trigger("t", with_subscriber(spec)))
            .await;
        refused(&reply, 422, field);
    }
    // Names over 20 characters are allowed (a SHOULD for whoever names them).
    let accepted = [
        json!({"filter": {"attributes": {"fa2": "on", "averyveryverylongextensionname": ""}}}),
        json!({"filters": [{"prefix": {"fa2": "o"}}]}),
    ];
    for (i, spec) in accepted.into_iter().enumerate() {
        let reply = broker
            .admin()
            .create(
                &triggers(NAMESPACE),
                &trigger(&format!("ok{i}"), with_subscriber(spec)),
            )
            .await;
        created(&reply);
    }
}

#[tokio::test]
async fn delivery_timeout_must_be_greater_than_zero() {
    let broker = start().await;
    let admin = broker.admin();
    let sink = json!({"uri": "http://127.0.0.1:9/sink"});
    let zero = json!({"timeout": "PT0S"});
    let kinds = [
        (
            triggers(NAMESPACE),
            trigger(
                "t",
                json!({"broker": "default", "subscriber": sink, "delivery": zero}),
            ),
        ),
        (
            subscriptions_in(NAMESPACE),
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": "s"},
                   "spec": {"channel": channel_ref("orders"), "subscriber": sink, "delivery": zero}}),
        ),
        (
            brokers(NAMESPACE),
            broker_object("b", json!({}), json!({"delivery": zero})),
        ),
        (
            channels_in(NAMESPACE),
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"},
                   "spec": {"delivery": zero}}),
        ),
    ];
    for (collection, object) in kinds {
        let reply = admin.create(&collection, &object).await;
        refused(&reply, 422, "spec.delivery.timeout");
    }
    for timeout in ["-PT1S", "PT-1S", "P0D", "PT0.000S"] {
        let spec =
            json!({"broker": "default", "subscriber": sink, "delivery": {"timeout": timeout}});
        let reply = admin
            .create(&triggers(NAMESPACE), &trigger("t", spec))
            .await;
        refused(&reply, 422, "spec.delivery.timeout");
    }
    // A zero backoffDelay retries at once and a zero retryAfterMax ignores
    // Retry-After: both are meaningful, as in Knative.
    let spec = json!({"broker": "default", "subscriber": sink,
                      "delivery": {"timeout": "PT1S", "backoffDelay": "PT0S", "retryAfterMax": "PT0S"}});
    created(
        &admin
            .create(&triggers(NAMESPACE), &trigger("t", spec))
            .await,
    );
}

#[tokio::test]
async fn provisioning_with_a_zero_delivery_timeout_is_400_naming_the_field() {
    let broker = Broker::start().await;
    commerce_in(&broker, &[NAMESPACE]).await;
    let mut body = provision_body(ORDER_SERVICE, NAMESPACE);
    body["parameters"] = json!({"delivery": {"timeout": "PT0S"}});
    let reply = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("parameters.delivery.timeout"),
        "{}",
        reply.text
    );
    body["parameters"] = json!({"delivery": {"timeout": "PT5S"}});
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    let update =
        json!({"service_id": ORDER_SERVICE, "parameters": {"delivery": {"timeout": "PT0S"}}});
    let reply = broker.osb().update(INSTANCE, &update, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("parameters.delivery.timeout"),
        "{}",
        reply.text
    );
    let subscription = broker
        .admin()
        .find(&format!("{}/{APPLICATION}.{NAMESPACE}", subscriptions()))
        .await
        .expect("wired");
    assert_eq!(
        subscription["spec"]["delivery"]["timeout"], "PT5S",
        "the refused update changed nothing"
    );
}
