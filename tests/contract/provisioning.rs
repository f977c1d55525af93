//! Provisioning end to end: what appears in the store when an Event ServiceClass is
//! provisioned, and what goes when it is deprovisioned.

use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::{Broker, eventually};

fn labels(object: &Value) -> &Value {
    &object["metadata"]["labels"]
}

fn owners(subscription: &Value) -> Vec<String> {
    let text = subscription["metadata"]["annotations"]["meshbroker.io/instances"]
        .as_str()
        .unwrap_or("[]");
    serde_json::from_str(text).expect("owners are a JSON list")
}

#[tokio::test]
async fn provisioning_labels_the_namespace_installs_the_broker_and_wires_the_subscription() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    broker
        .osb()
        .provision_and_wait("orders-a", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    let admin = broker.admin();
    let namespace = admin
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("namespace");
    assert_eq!(labels(&namespace)["knative-eventing-injection"], "enabled");
    let default_broker = admin
        .find(&format!("{}/default", brokers("team-a")))
        .await
        .expect("Broker default");
    assert_eq!(
        default_broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"],
        "MeshBroker"
    );
    assert_eq!(
        labels(&default_broker)["app.kubernetes.io/managed-by"],
        "meshbroker"
    );
    let broker_url = default_broker["status"]["address"]["url"]
        .as_str()
        .expect("Broker address")
        .to_string();
    assert!(
        broker_url.starts_with(&broker.events),
        "{broker_url} is on the events listener"
    );
    let subscription = admin
        .find(&format!("{}/commerce.team-a", subscriptions()))
        .await
        .expect("Subscription");
    assert_eq!(subscription["spec"]["channel"]["name"], APPLICATION);
    assert_eq!(subscription["spec"]["subscriber"]["ref"]["kind"], "Broker");
    assert_eq!(
        subscription["spec"]["subscriber"]["ref"]["namespace"],
        "team-a"
    );
    assert_eq!(
        subscription["status"]["physicalSubscription"]["subscriberUri"],
        json!(broker_url)
    );
    assert_eq!(owners(&subscription), vec!["orders-a"]);
    let channel = admin
        .find(&format!("{}/{APPLICATION}", channels()))
        .await
        .expect("Channel");
    assert_eq!(labels(&channel)["application-name"], APPLICATION);

    broker
        .osb()
        .deprovision_and_wait("orders-a", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    assert!(
        admin
            .find(&format!("{}/commerce.team-a", subscriptions()))
            .await
            .is_none(),
        "Subscription gone"
    );
    let namespace = admin
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("namespace stays");
    assert!(
        labels(&namespace)
            .get("knative-eventing-injection")
            .is_none(),
        "label removed: {namespace}"
    );
    assert!(
        admin
            .find(&format!("{}/default", brokers("team-a")))
            .await
            .is_none(),
        "Broker removed"
    );
    assert!(
        admin
            .find(&format!("{}/{APPLICATION}", channels()))
            .await
            .is_some(),
        "the Application's Channel stays"
    );
}

#[tokio::test]
async fn two_services_of_one_application_share_one_subscription() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    broker
        .osb()
        .provision_and_wait("orders", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    broker
        .osb()
        .provision_and_wait("shipping", &provision_body(SHIPPING_SERVICE, "team-a"))
        .await;
    let list = broker.admin().get(&subscriptions()).await.body;
    let items = list["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        1,
        "one Subscription per (Application, namespace): {list}"
    );
    assert_eq!(owners(&items[0]), vec!["orders", "shipping"]);

    broker
        .osb()
        .deprovision_and_wait("orders", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    let path = format!("{}/commerce.team-a", subscriptions());
    let subscription = broker
        .admin()
        .find(&path)
        .await
        .expect("still needed by shipping");
    assert_eq!(owners(&subscription), vec!["shipping"]);
    assert!(
        broker
            .admin()
            .find(&format!("{}/default", brokers("team-a")))
            .await
            .is_some(),
        "Broker kept"
    );
    broker
        .osb()
        .deprovision_and_wait("shipping", SHIPPING_SERVICE, &plan_of(SHIPPING_SERVICE))
        .await;
    assert!(broker.admin().find(&path).await.is_none());
}

/// Provisions `instance` of `service` into team-a with `delivery` as its parameters.
fn with_delivery(service: &str, delivery: Value) -> Value {
    let mut body = provision_body(service, "team-a");
    body["parameters"] = json!({ "delivery": delivery });
    body
}

#[tokio::test]
async fn instances_sharing_a_subscription_get_the_most_patient_delivery_and_take_theirs_away_when_they_go()
 {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let osb = broker.osb();
    let path = format!("{}/commerce.team-a", subscriptions());
    let delivery = || async { broker.admin().get(&path).await.body["spec"]["delivery"].clone() };
    osb.provision_and_wait(
        "orders",
        &with_delivery(ORDER_SERVICE, json!({"retry": 3, "timeout": "PT60S"})),
    )
    .await;
    osb.provision_and_wait(
        "shipping",
        &with_delivery(
            SHIPPING_SERVICE,
            json!({"retry": 5, "backoffDelay": "PT1S"}),
        ),
    )
    .await;
    assert_eq!(
        delivery().await,
        json!({"retry": 5, "timeout": "PT60S", "backoffDelay": "PT1S"}),
        "each option at its most patient"
    );

    // Shipping asks for less: orders keeps what it asked for.
    let update = json!({"service_id": SHIPPING_SERVICE, "parameters": {"delivery": {"retry": 1}}});
    let reply = osb.update("shipping", &update, true).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let operation = reply.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert_eq!(
        osb.finished("shipping", &operation).await.body["state"],
        "succeeded"
    );
    assert_eq!(delivery().await, json!({"retry": 3, "timeout": "PT60S"}));
    assert_eq!(
        osb.fetch("orders").await.body["parameters"],
        json!({"delivery": {"retry": 3, "timeout": "PT60S"}}),
        "an instance's parameters are its own"
    );

    // What orders asked for leaves with it; an instance asking nothing asks for
    // the defaults (3 retries).
    osb.deprovision_and_wait("orders", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    assert_eq!(delivery().await, json!({"retry": 1}));
    osb.provision_and_wait("orders-again", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    assert_eq!(delivery().await, json!({"retry": 3}));
    osb.deprovision_and_wait("shipping", SHIPPING_SERVICE, &plan_of(SHIPPING_SERVICE))
        .await;
    assert_eq!(
        delivery().await,
        Value::Null,
        "no instance asks for anything"
    );
}

#[tokio::test]
async fn each_namespace_gets_its_own_subscription_and_broker() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a", "team-b"]).await;
    broker
        .osb()
        .provision_and_wait("a", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    broker
        .osb()
        .provision_and_wait("b", &provision_body(ORDER_SERVICE, "team-b"))
        .await;
    for namespace in ["team-a", "team-b"] {
        assert!(
            broker
                .admin()
                .find(&format!("{}/commerce.{namespace}", subscriptions()))
                .await
                .is_some()
        );
        assert!(
            broker
                .admin()
                .find(&format!("{}/default", brokers(namespace)))
                .await
                .is_some()
        );
    }
    broker
        .osb()
        .deprovision_and_wait("a", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    assert!(
        broker
            .admin()
            .find(&format!("{}/default", brokers("team-a")))
            .await
            .is_none()
    );
    assert!(
        broker
            .admin()
            .find(&format!("{}/default", brokers("team-b")))
            .await
            .is_some(),
        "team-b untouched"
    );
}

#[tokio::test]
async fn a_channel_not_yet_ready_makes_provisioning_wait_not_fail() {
    let broker = Broker::start().await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let started = broker
        .osb()
        .provision("orders", &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    eventually(
        "the operation to report it waits for the Channel",
        async || {
            let reply = broker
                .osb()
                .last_operation("orders", Some(&operation))
                .await;
            (reply.body["state"] == "in progress" && reply.message().contains("waiting"))
                .then_some(())
        },
    )
    .await;
    assert!(
        broker
            .admin()
            .find(&format!("{}/commerce.team-a", subscriptions()))
            .await
            .is_none()
    );
    make_channel_ready(&broker).await;
    let done = broker.osb().finished("orders", &operation).await;
    assert_eq!(done.body["state"], "succeeded", "{}", done.text);
}

#[tokio::test]
async fn an_interrupted_operation_resumes_after_a_restart() {
    let mut broker = Broker::start().await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let started = broker
        .osb()
        .provision("orders", &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(started.status, 202);
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    broker.kill();
    broker.restart().await;
    let after = broker
        .osb()
        .last_operation("orders", Some(&operation))
        .await;
    assert_eq!(
        after.body["state"], "in progress",
        "the operation survived the crash: {}",
        after.text
    );
    make_channel_ready(&broker).await;
    let done = broker.osb().finished("orders", &operation).await;
    assert_eq!(
        done.body["state"],
        "succeeded",
        "{}\n{}",
        done.text,
        broker.log()
    );
    assert!(
        broker
            .admin()
            .find(&format!("{}/commerce.team-a", subscriptions()))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn instances_survive_a_restart() {
    let mut broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    broker
        .osb()
        .provision_and_wait("orders", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    assert!(broker.terminate().await, "a clean stop on SIGTERM");
    broker.restart().await;
    assert_eq!(broker.osb().fetch("orders").await.status, 200);
    broker
        .osb()
        .deprovision_and_wait("orders", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
}

#[tokio::test]
async fn a_label_a_person_set_is_kept_on_deprovision() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"knative-eventing-injection": "enabled"}}
    });
    assert_eq!(
        broker.admin().create(NAMESPACES, &namespace).await.status,
        201
    );
    map_commerce(&broker, "team-a", &[]).await;
    broker
        .osb()
        .provision_and_wait("orders", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    broker
        .osb()
        .deprovision_and_wait("orders", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    let namespace = broker
        .admin()
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("namespace");
    assert_eq!(
        labels(&namespace)["knative-eventing-injection"],
        "enabled",
        "meshbroker did not set it"
    );
    assert!(
        broker
            .admin()
            .find(&format!("{}/default", brokers("team-a")))
            .await
            .is_some(),
        "the label still asks for it"
    );
}

#[tokio::test]
async fn deleting_an_application_removes_its_channel_and_source() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    let channel = format!("{}/{APPLICATION}", channels());
    eventually("the Channel to appear", async || {
        broker.admin().find(&channel).await
    })
    .await;
    let application = broker
        .admin()
        .find(&format!("{APPLICATIONS}/{APPLICATION}"))
        .await
        .expect("app");
    eventually("the Application to become ready", async || {
        let app = broker
            .admin()
            .find(&format!("{APPLICATIONS}/{APPLICATION}"))
            .await?;
        (app["status"]["conditions"][0]["status"] == "True").then_some(())
    })
    .await;
    assert!(application["metadata"]["uid"].is_string());
    assert_eq!(
        broker
            .admin()
            .delete(&format!("{APPLICATIONS}/{APPLICATION}"))
            .await
            .status,
        200
    );
    eventually("the Channel to go", async || {
        broker.admin().find(&channel).await.is_none().then_some(())
    })
    .await;
    let sources = format!(
        "/apis/sources.kyma-project.io/v1alpha1/namespaces/{INTEGRATION}/httpsources/{APPLICATION}"
    );
    let credential = format!("{}/{APPLICATION}", access_tokens(INTEGRATION));
    eventually("the HTTPSource and the credential to go", async || {
        let gone = broker.admin().find(&sources).await.is_none()
            && broker.admin().find(&credential).await.is_none();
        gone.then_some(())
    })
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_operations_by_state() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    broker.osb().catalog().await;
    broker
        .osb()
        .provision_and_wait("orders", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    let nowhere = broker
        .http
        .get(format!("{}/no/such/path", broker.control))
        .send()
        .await
        .expect("request");
    assert_eq!(nowhere.status(), 404);
    // The runner counts an operation once its end is stored, which is what
    // last_operation already reported: poll for the count.
    let finished =
        r#"meshbroker_osb_operations_finished_total{kind="provision",state="succeeded"} 1"#;
    let text = eventually("the finished provision to be counted", async || {
        let text = broker.metrics().await;
        text.contains(finished).then_some(text)
    })
    .await;
    assert!(
        text.contains(r#"meshbroker_http_requests_total{listener="control",route="/v2/catalog",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"meshbroker_http_requests_total{listener="control",route="unmatched",method="GET",status="404"} 1"#),
        "the fallback's answers count too, never under the raw path: {text}"
    );
    assert!(
        text.contains(
            r#"meshbroker_osb_operations_in_progress{kind="provision",state="in progress"} 0"#
        ),
        "{text}"
    );
}

fn event_types(namespace: &str) -> String {
    format!("/apis/eventing.knative.dev/v1beta2/namespaces/{namespace}/eventtypes")
}

#[tokio::test]
async fn a_provisioned_instance_publishes_its_event_types_as_knative_event_types() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a", "team-b"]).await;
    broker
        .osb()
        .provision_and_wait("orders-a", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    // On a Kubernetes API server the status is written after the object
    // (through /status): wait for both.
    let listed = eventually("the EventTypes of team-a, with their status", async || {
        let reply = broker.admin().get(&event_types("team-a")).await;
        let items = reply.body["items"].as_array()?.clone();
        let with_status = items.iter().all(|e| {
            e["status"]["conditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        });
        (items.len() == 2 && with_status).then_some(items)
    })
    .await;
    let created = listed
        .iter()
        .find(|e| e["metadata"]["name"] == "commerce-order-created-v1")
        .expect("order.created v1");
    assert_eq!(created["spec"]["type"], "order.created");
    assert_eq!(created["spec"]["source"], APPLICATION);
    assert_eq!(created["spec"]["reference"]["kind"], "Broker");
    assert_eq!(created["spec"]["reference"]["name"], "default");
    let schema: Value =
        serde_json::from_str(created["spec"]["schemaData"].as_str().expect("schemaData"))
            .expect("the payload schema as JSON");
    assert_eq!(schema["required"], json!(["orderId"]));
    assert_eq!(created["status"]["conditions"][0]["status"], "True");
    assert!(
        listed
            .iter()
            .any(|e| e["metadata"]["name"] == "commerce-order-cancelled-v1")
    );
    let elsewhere = broker.admin().get(&event_types("team-b")).await;
    assert_eq!(
        elsewhere.body["items"].as_array().map(Vec::len),
        Some(0),
        "only the namespace that provisioned it: {}",
        elsewhere.text
    );

    // Deleted by hand: put back.
    let gone = broker
        .admin()
        .delete(&format!(
            "{}/commerce-order-created-v1",
            event_types("team-a")
        ))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    eventually("the EventType to come back", async || {
        broker
            .admin()
            .find(&format!(
                "{}/commerce-order-created-v1",
                event_types("team-a")
            ))
            .await
    })
    .await;

    broker
        .osb()
        .deprovision_and_wait("orders-a", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    eventually("the EventTypes to go with the instance", async || {
        let reply = broker.admin().get(&event_types("team-a")).await;
        (reply.body["items"].as_array()?.is_empty()).then_some(())
    })
    .await;
}

/// Two instances of one class in a namespace stand for the same EventTypes:
/// the first holds them, the second takes them over when the first goes,
/// and neither fails meanwhile.
#[tokio::test]
async fn a_second_instance_of_a_class_takes_its_event_types_over_from_the_first() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let osb = broker.osb();
    for instance in ["orders-a", "orders-b"] {
        osb.provision_and_wait(instance, &provision_body(ORDER_SERVICE, "team-a"))
            .await;
    }
    let holder = async || {
        let reply = broker.admin().get(&event_types("team-a")).await;
        let items = reply.body["items"].as_array()?.clone();
        let holders: Vec<String> = items
            .iter()
            .filter_map(|e| e["metadata"]["labels"]["meshbroker.io/instance"].as_str())
            .map(str::to_string)
            .collect();
        (items.len() == 2 && holders.iter().all(|h| h == &holders[0])).then(|| holders[0].clone())
    };
    assert_eq!(
        eventually("EventTypes held by one instance", holder).await,
        "orders-a"
    );
    osb.deprovision_and_wait("orders-a", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    eventually("the second instance to hold them", async || {
        (holder().await? == "orders-b").then_some(())
    })
    .await;
    assert!(
        !broker.log().contains("already exists"),
        "no controller failed meanwhile:\n{}",
        broker.log()
    );
}

#[tokio::test]
async fn an_http_source_is_ready_only_while_its_application_exists_and_is_mapped_into_its_namespace()
 {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    // Registered but not mapped into team-a: to team-a as if it were not there.
    register_commerce(&broker).await;
    let path = "/apis/sources.kyma-project.io/v1alpha1/namespaces/team-a/httpsources/mine";
    let source = json!({"apiVersion": "sources.kyma-project.io/v1alpha1", "kind": "HTTPSource",
        "metadata": {"name": "mine"}, "spec": {"source": APPLICATION}});
    let created = broker
        .admin()
        .create(
            "/apis/sources.kyma-project.io/v1alpha1/namespaces/team-a/httpsources",
            &source,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let ready = async |want: &str| {
        eventually(&format!("the HTTPSource's Ready {want}"), async || {
            let object = broker.admin().find(path).await?;
            let ready = object["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .clone();
            (ready["status"] == want).then_some((object, ready))
        })
        .await
    };
    let (object, condition) = ready("False").await;
    assert_eq!(condition["reason"], "ApplicationNotFound", "{condition}");
    assert!(
        condition["message"]
            .as_str()
            .is_some_and(|m| m.contains("mapped into namespace \"team-a\"")),
        "{condition}"
    );
    assert!(object["status"]["url"].is_null(), "no address: {object}");

    map_commerce(&broker, "team-a", &[]).await;
    let (object, _) = ready("True").await;
    assert!(
        object["status"]["url"]
            .as_str()
            .is_some_and(|url| url.ends_with(&format!("/{APPLICATION}/events"))),
        "{object}"
    );
    let mapping = format!("{}/{APPLICATION}", mappings("team-a"));
    assert_eq!(broker.admin().delete(&mapping).await.status, 200);
    ready("False").await;
    map_commerce(&broker, "team-a", &[]).await;
    ready("True").await;
    let deleted = broker
        .admin()
        .delete(&format!("{APPLICATIONS}/{APPLICATION}"))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    ready("False").await;
}
