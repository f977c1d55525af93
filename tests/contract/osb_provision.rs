//! PUT /v2/service_instances/{id}: every provisioning rule of OSB v2.17.

use serde_json::{Value, json};

use crate::common::Broker;
use crate::common::fixtures::*;

const INSTANCE: &str = "0b9f1c5e-7a8b-4c3d-9e0f-1a2b3c4d5e6f";

#[tokio::test]
async fn an_async_provision_is_202_with_an_operation_that_succeeds() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let reply = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let operation = reply.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert!(!operation.is_empty() && operation.len() <= 10_000);
    let done = broker.osb().finished(INSTANCE, &operation).await;
    assert_eq!(done.body["state"], "succeeded", "{}", done.text);
}

#[tokio::test]
async fn a_repeated_provision_in_progress_is_202_with_the_same_operation() {
    let broker = Broker::start().await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    let first = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(first.status, 202);
    let second = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(second.status, 202, "still in progress: 202, not 200");
    assert_eq!(second.body["operation"], first.body["operation"]);
    // The mapping going meanwhile changes nothing for a re-sent PUT: "a
    // re-sent PUT request MUST return a 202 Accepted" while in progress.
    let mapping = format!("{}/commerce", mappings("team-a"));
    let deleted = broker.admin().delete(&mapping).await;
    assert!(deleted.status < 300, "{}", deleted.text);
    let third = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(third.status, 202, "{}", third.text);
    assert_eq!(third.body["operation"], first.body["operation"]);
    // Another request is still a conflict, not a 400 about the mapping.
    let mut other = body.clone();
    other["organization_guid"] = json!("another-cluster");
    let conflict = broker.osb().provision(INSTANCE, &other, true).await;
    assert_eq!(conflict.status, 409, "{}", conflict.text);
}

#[tokio::test]
async fn a_repeated_identical_provision_when_done_is_200() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    let again = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, json!({}));
    // The instance stands whatever became of its mapping since.
    let mapping = format!("{}/commerce", mappings("team-a"));
    let deleted = broker.admin().delete(&mapping).await;
    assert!(deleted.status < 300, "{}", deleted.text);
    let again = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let mut unknown_fields = body.clone();
    unknown_fields["x-vendor-extension"] = json!({"ignored": true});
    assert_eq!(
        broker
            .osb()
            .provision(INSTANCE, &unknown_fields, true)
            .await
            .status,
        200,
        "unknown fields are ignored"
    );
}

#[tokio::test]
async fn the_same_id_with_other_attributes_is_409() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a", "team-b"]).await;
    broker
        .osb()
        .provision_and_wait(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    let other_namespace = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-b"), true)
        .await;
    assert_eq!(other_namespace.status, 409, "{}", other_namespace.text);
    let mut other_parameters = provision_body(ORDER_SERVICE, "team-a");
    other_parameters["parameters"] = json!({"delivery": {"retry": 2}});
    assert_eq!(
        broker
            .osb()
            .provision(INSTANCE, &other_parameters, true)
            .await
            .status,
        409
    );
    let other_service = broker
        .osb()
        .provision(INSTANCE, &provision_body(SHIPPING_SERVICE, "team-a"), true)
        .await;
    assert_eq!(other_service.status, 409);
}

#[tokio::test]
async fn without_accepts_incomplete_a_quick_provision_is_201() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let reply = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), false)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body, json!({}));
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        200,
        "complete when answered"
    );
}

/// What a refused request must not have touched: the instance records whole, and
/// of the mesh objects everything but their status (controllers keep writing status
/// on their own, whatever OSB requests come).
async fn store_state(broker: &Broker, namespaces: &[&str]) -> Value {
    let admin = broker.admin();
    let items = async |path: &str| -> Vec<Value> {
        let reply = admin.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        reply.body["items"].as_array().cloned().unwrap_or_default()
    };
    let without_status = |objects: Vec<Value>| -> Vec<Value> {
        objects
            .into_iter()
            .map(|o| json!({"metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"], "uid": o["metadata"]["uid"], "labels": o["metadata"]["labels"], "annotations": o["metadata"]["annotations"]}, "spec": o["spec"]}))
            .collect()
    };
    let mut default_brokers = Vec::new();
    for namespace in namespaces {
        default_brokers.extend(without_status(items(&brokers(namespace)).await));
    }
    json!({
        "instances": items(SERVICE_INSTANCES).await,
        "subscriptions": without_status(items(&subscriptions()).await),
        "namespaces": without_status(items(NAMESPACES).await),
        "brokers": default_brokers,
    })
}

/// Asserts the store is still `before`: at once, and again after a while — what
/// must not happen has no event to wait for, so the second look comes after a
/// bounded pause, ten times the runner's first retry delay (100 ms): an operation
/// started behind the answer would have written by then.
async fn unchanged(broker: &Broker, namespaces: &[&str], before: &Value, what: &str) {
    assert_eq!(
        &store_state(broker, namespaces).await,
        before,
        "{what} changed the store"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        &store_state(broker, namespaces).await,
        before,
        "{what} changed the store after it was answered"
    );
}

fn async_required(reply: &crate::common::Reply, what: &str) {
    assert_eq!(reply.status, 422, "{what}: {}", reply.text);
    assert_eq!(reply.body["error"], "AsyncRequired", "{what}");
    assert!(
        reply.message().contains("accepts_incomplete=true"),
        "{what}: {}",
        reply.text
    );
}

#[tokio::test]
async fn a_422_async_required_changes_nothing() {
    let broker = Broker::start_with(&["--sync-wait", "0s"]).await;
    let namespaces = ["team-a", "team-b"];
    commerce_in(&broker, &namespaces).await;
    broker
        .osb()
        .provision_and_wait(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    // From here no operation could finish, should one be started after all.
    make_channel_unready(&broker).await;
    let before = store_state(&broker, &namespaces).await;

    let provision = broker
        .osb()
        .provision("another", &provision_body(ORDER_SERVICE, "team-b"), false)
        .await;
    async_required(&provision, "a provision");
    unchanged(&broker, &namespaces, &before, "a refused provision").await;

    let update = json!({"service_id": ORDER_SERVICE, "parameters": {"delivery": {"retry": 4}}});
    async_required(
        &broker.osb().update(INSTANCE, &update, false).await,
        "an update",
    );
    unchanged(&broker, &namespaces, &before, "a refused update").await;

    let plan = plan_of(ORDER_SERVICE);
    async_required(
        &broker
            .osb()
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, false)
            .await,
        "a deprovision",
    );
    unchanged(&broker, &namespaces, &before, "a refused deprovision").await;

    let again = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), false)
        .await;
    assert_eq!(
        again.status, 200,
        "what needs no operation is answered synchronously: {}",
        again.text
    );
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        200,
        "still provisioned"
    );
}

#[tokio::test]
async fn without_accepts_incomplete_a_provision_whose_channel_stays_unready_is_422_and_changes_nothing()
 {
    let broker = Broker::start_with(&["--sync-wait", "300ms"]).await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let before = store_state(&broker, &["team-a"]).await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    let reply = broker.osb().provision(INSTANCE, &body, false).await;
    async_required(&reply, "a provision waiting for its Channel");
    assert!(
        reply.message().contains("deadLetterSink"),
        "says what it would wait for: {}",
        reply.text
    );
    unchanged(&broker, &["team-a"], &before, "a refused provision").await;
    let follow = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(
        follow.status, 202,
        "asynchronously it runs: {}",
        follow.text
    );
    make_channel_ready(&broker).await;
    let operation = follow.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert_eq!(
        broker.osb().finished(INSTANCE, &operation).await.body["state"],
        "succeeded"
    );
}

/// A broker with `--sync-wait wait` whose team-a Broker can never get Ready
/// (its dead-letter sink names nothing), the commerce Channel Ready.
async fn with_a_broker_never_ready(wait: &str) -> Broker {
    let broker = Broker::start_with(&["--sync-wait", wait]).await;
    commerce_in(&broker, &["team-a"]).await;
    channel_ready(&broker).await;
    let never_ready = json!({
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": "default", "namespace": "team-a"},
        "spec": {"delivery": {"deadLetterSink": {"ref": {
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "absent"}}}},
    });
    let created = broker
        .admin()
        .create(&brokers("team-a"), &never_ready)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    broker
}

#[tokio::test]
async fn a_synchronous_operation_waiting_on_its_namespace_fails_at_the_end_of_the_wait() {
    // An asynchronous provision waits on the Broker, holding the namespace.
    let broker = with_a_broker_never_ready("300ms").await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    let holding = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(holding.status, 202, "{}", holding.text);
    crate::common::eventually("the first provision to wait on the Broker", async || {
        let last = broker.osb().last_operation(INSTANCE, None).await;
        let description = last.body["description"].as_str().unwrap_or_default();
        description.contains("broker-ready").then_some(())
    })
    .await;

    let second = "5d1e0c2b-3a4f-4b6c-8d7e-9f0a1b2c3d4e";
    let reply = broker.osb().provision(second, &body, false).await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert_eq!(reply.body["error"], "OperationFailed");
    assert!(
        reply
            .message()
            .contains("another operation in the namespace"),
        "{}",
        reply.text
    );
    let last = broker.osb().last_operation(second, None).await;
    assert_eq!(
        last.body["state"], "failed",
        "ended when answered, not run on once the namespace is free: {}",
        last.text
    );

    // A synchronous deprovision takes the namespace before it undoes
    // anything: queued the same way, it fails with the instance still there.
    let plan = plan_of(ORDER_SERVICE);
    for attempt in ["first", "second"] {
        let reply = broker
            .osb()
            .deprovision(second, ORDER_SERVICE, &plan, false)
            .await;
        assert_eq!(reply.status, 500, "{attempt}: {}", reply.text);
        assert_eq!(reply.body["error"], "OperationFailed");
        assert!(
            reply
                .message()
                .contains("another operation in the namespace"),
            "{attempt}: {}",
            reply.text
        );
    }
    let last = broker.osb().last_operation(second, None).await;
    assert_eq!(last.body["state"], "failed", "{}", last.text);
}

#[tokio::test]
async fn a_synchronous_operation_that_outlasts_the_wait_fails_and_stops() {
    // Long enough to decide and record; the wait always runs out.
    let broker = with_a_broker_never_ready("50ms").await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    let reply = broker.osb().provision(INSTANCE, &body, false).await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert_eq!(reply.body["error"], "OperationFailed");
    assert!(
        reply.message().contains("synchronous wait"),
        "{}",
        reply.text
    );
    let last = broker.osb().last_operation(INSTANCE, None).await;
    assert_eq!(
        last.body["state"], "failed",
        "ended when answered: nothing runs on behind the platform's back: {}",
        last.text
    );
    // The platform's orphan mitigation unwinds it like any failed instance.
    broker
        .osb()
        .deprovision_and_wait(INSTANCE, ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    let namespace = broker
        .admin()
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("namespace");
    assert!(
        namespace["metadata"]["labels"]["knative-eventing-injection"].is_null(),
        "{namespace}"
    );
}

#[tokio::test]
async fn empty_or_missing_required_fields_are_400() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let base = provision_body(ORDER_SERVICE, "team-a");
    for field in ["service_id", "plan_id", "organization_guid", "space_guid"] {
        for value in [json!(""), json!(null)] {
            let mut body = base.clone();
            if value.is_null() {
                body.as_object_mut().expect("object").remove(field);
            } else {
                body[field] = value;
            }
            let reply = broker.osb().provision(INSTANCE, &body, true).await;
            assert_eq!(reply.status, 400, "{field}: {}", reply.text);
            assert!(
                reply.message().contains(field),
                "the error names {field}: {}",
                reply.text
            );
        }
    }
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        404,
        "nothing was recorded"
    );
}

#[tokio::test]
async fn an_unknown_service_or_plan_is_400() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["service_id"] = json!("no-such-service");
    let reply = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("no-such-service"));
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["plan_id"] = json!(plan_of(SHIPPING_SERVICE));
    assert_eq!(
        broker.osb().provision(INSTANCE, &body, true).await.status,
        400
    );
}

#[tokio::test]
async fn the_namespace_comes_from_context_or_prefix_and_both_must_agree() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a", "team-b"]).await;
    let mut no_context = provision_body(ORDER_SERVICE, "team-a");
    no_context
        .as_object_mut()
        .expect("object")
        .remove("context");
    let reply = broker.osb().provision(INSTANCE, &no_context, true).await;
    assert_eq!(reply.status, 400, "neither context nor prefix");
    assert!(reply.message().contains("namespace"), "{}", reply.text);
    let disagreeing = broker
        .osb_in("team-b")
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(disagreeing.status, 400, "{}", disagreeing.text);
    broker
        .osb_in("team-b")
        .provision_and_wait(INSTANCE, &no_context)
        .await;
    let fetched = broker.osb().fetch(INSTANCE).await;
    assert_eq!(
        fetched.body["metadata"]["attributes"]["namespace"], "team-b",
        "the prefix chose the namespace"
    );
}

#[tokio::test]
async fn a_namespace_without_the_application_mapping_is_refused() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    create_namespace(&broker, "team-a").await;
    let reply = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.message().contains("ApplicationMapping"),
        "{}",
        reply.text
    );
    map_commerce(&broker, "team-a", &[SHIPPING_SERVICE]).await;
    let reply = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(
        reply.status, 400,
        "a mapping that lists other services does not enable this one"
    );
    // Nothing of meshbroker's on the namespace: the API server's own
    // `kubernetes.io/metadata.name` label is all there may be.
    let namespace = broker
        .admin()
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("ns");
    let labels = namespace["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        labels.keys().all(|k| k == "kubernetes.io/metadata.name"),
        "{namespace}"
    );
    assert!(
        namespace["metadata"]["annotations"]
            .as_object()
            .is_none_or(|a| a.keys().all(|k| !k.starts_with("meshbroker.io/")))
    );
}

#[tokio::test]
async fn a_different_maintenance_info_version_is_422_and_an_empty_one_is_no_conflict() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["maintenance_info"] = json!({"version": "0.9.0"});
    let reply = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["error"], "MaintenanceInfoConflict");
    body["maintenance_info"] = json!({});
    assert_eq!(
        broker.osb().provision(INSTANCE, &body, true).await.status,
        202
    );
    let mut matching = provision_body(ORDER_SERVICE, "team-a");
    matching["maintenance_info"] = json!({"version": "1.0.0", "description": "ignored"});
    assert_eq!(
        broker
            .osb()
            .provision("second", &matching, true)
            .await
            .status,
        202
    );
}

#[tokio::test]
async fn parameters_failing_the_plan_schema_are_400_naming_the_field() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    for (parameters, field) in [
        (
            json!({"delivery": {"retry": 1000}}),
            "parameters.delivery.retry",
        ),
        (
            json!({"delivery": {"backoffPolicy": "random"}}),
            "parameters.delivery.backoffPolicy",
        ),
        (json!({"colour": "blue"}), "colour"),
    ] {
        let mut body = provision_body(ORDER_SERVICE, "team-a");
        body["parameters"] = parameters;
        let reply = broker.osb().provision(INSTANCE, &body, true).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert!(
            reply.message().contains(field),
            "names {field}: {}",
            reply.text
        );
    }
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["parameters"] =
        json!({"delivery": {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S"}});
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    let subscription = broker
        .admin()
        .find(&format!("{}/commerce.team-a", subscriptions()))
        .await
        .expect("wired");
    assert_eq!(
        subscription["spec"]["delivery"]["retry"], 3,
        "parameters reach the Subscription"
    );
}

#[tokio::test]
async fn a_context_platform_different_from_the_originating_identity_is_400() {
    use base64::Engine;
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let osb = broker.osb();
    let identity = base64::engine::general_purpose::STANDARD.encode(r#"{"user_id":"1"}"#);
    let request = osb
        .request(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{INSTANCE}?accepts_incomplete=true"),
        )
        .header(
            "X-Broker-API-Originating-Identity",
            format!("cloudfoundry {identity}"),
        )
        .json(&provision_body(ORDER_SERVICE, "team-a"));
    let reply = osb
        .send(request, "put", "/v2/service_instances/{instance_id}")
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.message().contains("cloudfoundry"), "{}", reply.text);
    // An update is checked alike, before anything is changed.
    let body = provision_body(ORDER_SERVICE, "team-a");
    osb.provision_and_wait(INSTANCE, &body).await;
    let update = osb
        .request(
            reqwest::Method::PATCH,
            &format!("/v2/service_instances/{INSTANCE}?accepts_incomplete=true"),
        )
        .header(
            "X-Broker-API-Originating-Identity",
            format!("cloudfoundry {identity}"),
        )
        .json(&json!({"service_id": ORDER_SERVICE, "context": body["context"]}));
    let reply = osb
        .send(update, "patch", "/v2/service_instances/{instance_id}")
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.message().contains("cloudfoundry"), "{}", reply.text);
}
