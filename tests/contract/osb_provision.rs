//! PUT /v2/service_instances/{id}: every provisioning rule of OSB v2.17.

use serde_json::json;

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

#[tokio::test]
async fn without_accepts_incomplete_a_slow_provision_is_422_async_required() {
    let broker = Broker::start_with(&["--sync-wait", "300ms"]).await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    let reply = broker.osb().provision(INSTANCE, &body, false).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.body["error"], "AsyncRequired");
    assert!(
        reply.message().contains("accepts_incomplete=true"),
        "{}",
        reply.text
    );
    let follow = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(
        follow.status, 202,
        "the operation can be followed asynchronously"
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
    assert!(
        broker
            .admin()
            .find(&format!("{NAMESPACES}/team-a"))
            .await
            .expect("ns")["metadata"]["labels"]
            .is_null()
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
}
