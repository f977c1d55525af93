//! Fetch, last_operation, update, deprovision and bindings: the rules of OSB v2.17.

use base64::Engine;
use serde_json::json;

use crate::common::fixtures::*;
use crate::common::{Broker, eventually};

const INSTANCE: &str = "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

async fn provisioned(namespaces: &[&str]) -> Broker {
    let broker = Broker::start().await;
    commerce_in(&broker, namespaces).await;
    broker
        .osb()
        .provision_and_wait(INSTANCE, &provision_body(ORDER_SERVICE, namespaces[0]))
        .await;
    broker
}

#[tokio::test]
async fn last_operation_of_an_unknown_instance_is_404() {
    let broker = Broker::start().await;
    assert_eq!(
        broker.osb().last_operation("nobody", None).await.status,
        404
    );
}

#[tokio::test]
async fn last_operation_in_progress_names_the_step_and_hints_retry_after() {
    let broker = Broker::start().await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let started = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    let waiting = crate::common::eventually("the step to be described", async || {
        let reply = broker
            .osb()
            .last_operation(INSTANCE, Some(&operation))
            .await;
        reply.message().contains("channel-ready").then_some(reply)
    })
    .await;
    assert_eq!(waiting.body["state"], "in progress");
    assert!(
        waiting.message().contains("deadLetterSink"),
        "says why it waits: {}",
        waiting.text
    );
    assert!(waiting.header("retry-after").is_some(), "Retry-After hint");
    let unknown = broker
        .osb()
        .last_operation(INSTANCE, Some("op-unknown"))
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    // The osb-checker polls with the operation's kind instead of its id.
    let by_kind = broker
        .osb()
        .last_operation(INSTANCE, Some("provision"))
        .await;
    assert_eq!(by_kind.status, 200, "{}", by_kind.text);
    assert_eq!(by_kind.body["state"], "in progress", "{}", by_kind.text);
}

#[tokio::test]
async fn a_provision_that_cannot_finish_fails_with_a_reason() {
    let broker = Broker::start_with(&["--operation-timeout", "1s"]).await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let started = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    let done = broker.osb().finished(INSTANCE, &operation).await;
    assert_eq!(done.body["state"], "failed");
    assert!(
        done.message().contains("channel-ready") && done.message().contains("deadLetterSink"),
        "{}",
        done.text
    );
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        404,
        "a failed instance cannot be fetched"
    );
}

#[tokio::test]
async fn fetching_an_instance_is_404_while_provisioning_and_200_after() {
    let broker = Broker::start().await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    assert_eq!(broker.osb().fetch(INSTANCE).await.status, 404);
    let body = provision_body(ORDER_SERVICE, "team-a");
    let started = broker.osb().provision(INSTANCE, &body, true).await;
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        404,
        "still provisioning"
    );
    make_channel_ready(&broker).await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    broker.osb().finished(INSTANCE, &operation).await;
    let fetched = broker.osb().fetch(INSTANCE).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["service_id"], ORDER_SERVICE);
    assert_eq!(fetched.body["plan_id"], plan_of(ORDER_SERVICE));
}

#[tokio::test]
async fn fetching_an_instance_being_updated_is_422_concurrency_error() {
    let broker = provisioned(&["team-a"]).await;
    make_channel_unready(&broker).await;
    let subscription = format!("{}/commerce.team-a", subscriptions());
    crate::common::eventually("the Subscription to notice its Channel", async || {
        let object = broker.admin().find(&subscription).await?;
        let ready = object["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        (ready["status"] == "False").then_some(())
    })
    .await;
    let update = json!({"service_id": ORDER_SERVICE, "parameters": {"delivery": {"retry": 5}}});
    let reply = broker.osb().update(INSTANCE, &update, true).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let fetched = broker.osb().fetch(INSTANCE).await;
    assert_eq!(fetched.status, 422);
    assert_eq!(fetched.body["error"], "ConcurrencyError");
    let deprovision = broker
        .osb()
        .deprovision(INSTANCE, ORDER_SERVICE, &plan_of(ORDER_SERVICE), true)
        .await;
    assert_eq!(
        deprovision.status, 422,
        "a conflicting request while an operation runs"
    );
    assert_eq!(deprovision.body["error"], "ConcurrencyError");
    let again = broker.osb().update(INSTANCE, &update, true).await;
    assert_eq!(
        again.body["operation"], reply.body["operation"],
        "the same update again follows the same operation"
    );
    make_channel_ready(&broker).await;
    let operation = reply.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert_eq!(
        broker.osb().finished(INSTANCE, &operation).await.body["state"],
        "succeeded"
    );
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.body["parameters"]["delivery"]["retry"],
        5
    );
}

#[tokio::test]
async fn an_update_with_unchanged_parameters_is_200_and_bad_updates_change_nothing() {
    let broker = provisioned(&["team-a"]).await;
    let unchanged = broker
        .osb()
        .update(INSTANCE, &json!({"service_id": ORDER_SERVICE}), true)
        .await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    assert_eq!(unchanged.body, json!({}));
    let bad = json!({"service_id": ORDER_SERVICE, "parameters": {"delivery": {"retry": -1}}});
    let reply = broker.osb().update(INSTANCE, &bad, true).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.message().contains("parameters.delivery.retry"),
        "{}",
        reply.text
    );
    let missing = broker
        .osb()
        .update(INSTANCE, &json!({"plan_id": plan_of(ORDER_SERVICE)}), true)
        .await;
    assert_eq!(missing.status, 400);
    let conflict = json!({"service_id": ORDER_SERVICE, "maintenance_info": {"version": "2.0.0"}});
    assert_eq!(
        broker.osb().update(INSTANCE, &conflict, true).await.body["error"],
        "MaintenanceInfoConflict"
    );
    assert_eq!(
        broker
            .osb()
            .update("nobody", &json!({"service_id": ORDER_SERVICE}), true)
            .await
            .status,
        404
    );
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.body["parameters"],
        json!({}),
        "nothing changed"
    );
}

#[tokio::test]
async fn an_update_to_a_plan_the_service_does_not_have_or_with_odd_previous_values_is_400() {
    let broker = provisioned(&["team-a"]).await;
    // Each service has one plan (not updateable): any other is no plan of it.
    let plan_change = json!({"service_id": ORDER_SERVICE, "plan_id": "another-plan"});
    let reply = broker.osb().update(INSTANCE, &plan_change, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.message().contains("another-plan"), "{}", reply.text);
    let odd_past = json!({"service_id": ORDER_SERVICE, "previous_values": "x"});
    let reply = broker.osb().update(INSTANCE, &odd_past, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("previous_values"),
        "{}",
        reply.text
    );
    let same_plan = json!({"service_id": ORDER_SERVICE, "plan_id": plan_of(ORDER_SERVICE)});
    assert_eq!(
        broker.osb().update(INSTANCE, &same_plan, true).await.status,
        200
    );
}

#[tokio::test]
async fn a_changed_update_without_accepts_incomplete_finishes_with_200() {
    let broker = provisioned(&["team-a"]).await;
    let update = json!({"service_id": ORDER_SERVICE, "parameters": {"delivery": {"retry": 7}}});
    let reply = broker.osb().update(INSTANCE, &update, false).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let subscription = broker
        .admin()
        .find(&format!("{}/commerce.team-a", subscriptions()))
        .await
        .expect("wired");
    assert_eq!(subscription["spec"]["delivery"]["retry"], 7);
}

#[tokio::test]
async fn a_synchronous_update_that_fails_applies_none_of_its_changes() {
    let broker = Broker::start_with(&["--sync-wait", "300ms"]).await;
    commerce_in(&broker, &["team-a"]).await;
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["parameters"] = json!({"delivery": {"retry": 2}});
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    // The update's first step writes at once; its Subscription then cannot get
    // Ready without the Broker it delivers to (taken away, and with the label
    // gone not injected again), so it fails at the end of the wait.
    let namespace_path = format!("{NAMESPACES}/team-a");
    let mut namespace = broker
        .admin()
        .find(&namespace_path)
        .await
        .expect("namespace");
    namespace["metadata"]["labels"]
        .as_object_mut()
        .expect("labelled")
        .remove("knative-eventing-injection");
    let reply = broker.admin().put(&namespace_path, &namespace).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = broker
        .admin()
        .delete(&format!("{}/default", brokers("team-a")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let path = format!("{}/commerce.team-a", subscriptions());
    eventually("the Subscription to report not Ready", async || {
        let subscription = broker.admin().find(&path).await?;
        let ready = subscription["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (!ready).then_some(())
    })
    .await;
    let update = json!({"service_id": ORDER_SERVICE, "parameters": {"delivery": {"retry": 7}}});
    let reply = broker.osb().update(INSTANCE, &update, false).await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert!(
        reply
            .message()
            .contains("previous delivery options are back"),
        "{}",
        reply.text
    );
    let subscription = broker.admin().find(&path).await.expect("wired");
    assert_eq!(
        subscription["spec"]["delivery"],
        json!({"retry": 2}),
        "the Subscription keeps what it had"
    );
    let fetched = broker.osb().fetch(INSTANCE).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(
        fetched.body["parameters"],
        json!({"delivery": {"retry": 2}})
    );
}

#[tokio::test]
async fn deprovision_needs_service_id_and_plan_id() {
    let broker = provisioned(&["team-a"]).await;
    let osb = broker.osb();
    for query in [
        "",
        "?service_id=x",
        &format!("?plan_id={}", plan_of(ORDER_SERVICE)),
        "?service_id=&plan_id=",
    ] {
        let request = osb.request(
            reqwest::Method::DELETE,
            &format!("/v2/service_instances/{INSTANCE}{query}"),
        );
        let reply = osb
            .send(request, "delete", "/v2/service_instances/{instance_id}")
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
    }
    let wrong = osb
        .deprovision(INSTANCE, SHIPPING_SERVICE, &plan_of(SHIPPING_SERVICE), true)
        .await;
    assert_eq!(wrong.status, 400, "ids of another service");
    assert_eq!(osb.fetch(INSTANCE).await.status, 200, "nothing changed");
}

#[tokio::test]
async fn deprovisioning_an_unknown_or_deleted_instance_is_410() {
    let broker = provisioned(&["team-a"]).await;
    let plan = plan_of(ORDER_SERVICE);
    assert_eq!(
        broker
            .osb()
            .deprovision("nobody", ORDER_SERVICE, &plan, true)
            .await
            .status,
        410
    );
    broker
        .osb()
        .deprovision_and_wait(INSTANCE, ORDER_SERVICE, &plan)
        .await;
    assert_eq!(
        broker
            .osb()
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, true)
            .await
            .status,
        410,
        "idempotent"
    );
    assert_eq!(
        broker
            .osb()
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, false)
            .await
            .status,
        410
    );
    assert_eq!(broker.osb().fetch(INSTANCE).await.status, 404);
}

#[tokio::test]
async fn a_sync_deprovision_is_200_and_a_repeated_async_one_returns_its_operation() {
    let broker = provisioned(&["team-a"]).await;
    let plan = plan_of(ORDER_SERVICE);
    assert_eq!(
        broker
            .osb()
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, false)
            .await
            .status,
        200
    );
    broker
        .osb()
        .provision_and_wait(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        200,
        "a deleted id can be provisioned again"
    );
}

#[tokio::test]
async fn a_failed_instance_is_deprovisioned_for_orphan_mitigation() {
    let broker = Broker::start_with(&["--operation-timeout", "1s"]).await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let started = broker
        .osb()
        .provision(INSTANCE, &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert_eq!(
        broker.osb().finished(INSTANCE, &operation).await.body["state"],
        "failed"
    );
    let plan = plan_of(ORDER_SERVICE);
    broker
        .osb()
        .deprovision_and_wait(INSTANCE, ORDER_SERVICE, &plan)
        .await;
    assert_eq!(
        broker
            .osb()
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, true)
            .await
            .status,
        410
    );
}

#[tokio::test]
async fn a_failed_provision_is_retried_by_provisioning_again() {
    let broker = Broker::start_with(&["--operation-timeout", "1s"]).await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    let first = broker.osb().provision(INSTANCE, &body, true).await;
    let first_op = first.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert_eq!(
        broker.osb().finished(INSTANCE, &first_op).await.body["state"],
        "failed"
    );
    make_channel_ready(&broker).await;
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    let old = broker.osb().last_operation(INSTANCE, Some(&first_op)).await;
    assert_eq!(
        old.body["state"], "failed",
        "the older operation is still reported"
    );
}

#[tokio::test]
async fn binding_an_events_only_class_is_400() {
    let broker = provisioned(&["team-a"]).await;
    let body = json!({"service_id": ORDER_SERVICE, "plan_id": plan_of(ORDER_SERVICE)});
    let reply = broker.osb().bind(INSTANCE, "binding-1", &body).await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("not bindable"), "{}", reply.text);
}

#[tokio::test]
async fn binding_an_api_class_returns_its_gateway_as_credentials() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    broker
        .osb()
        .provision_and_wait("shipping", &provision_body(SHIPPING_SERVICE, "team-a"))
        .await;
    let body = json!({"service_id": SHIPPING_SERVICE, "plan_id": plan_of(SHIPPING_SERVICE)});
    // The deprecated app_guid, if present, MUST be a non-empty string.
    let mut blank_app = body.clone();
    blank_app["app_guid"] = json!("");
    let refused = broker.osb().bind("shipping", "binding-1", &blank_app).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.message().contains("app_guid"), "{}", refused.text);
    // A context naming another namespace than the instance's is refused.
    let mut elsewhere = body.clone();
    elsewhere["context"] = json!({"platform": "kubernetes", "namespace": "team-b"});
    let refused = broker.osb().bind("shipping", "binding-1", &elsewhere).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.message().contains("team-b"), "{}", refused.text);
    // So is one whose platform the originating identity contradicts.
    let identity = base64::engine::general_purpose::STANDARD.encode(r#"{"user_id":"1"}"#);
    let mut here = body.clone();
    here["context"] = json!({"platform": "kubernetes", "namespace": "team-a"});
    let path = "/v2/service_instances/shipping/service_bindings/binding-1";
    let request = broker
        .osb()
        .request(reqwest::Method::PUT, path)
        .header(
            "X-Broker-API-Originating-Identity",
            format!("cloudfoundry {identity}"),
        )
        .json(&here);
    let template = "/v2/service_instances/{instance_id}/service_bindings/{binding_id}";
    let refused = broker.osb().send(request, "put", template).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.message().contains("cloudfoundry"),
        "{}",
        refused.text
    );
    let created = broker.osb().bind("shipping", "binding-1", &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["credentials"]["gatewayUrl"],
        "http://commerce-gateway.kyma-integration.svc.cluster.local/shipping"
    );
    assert_eq!(
        broker
            .osb()
            .bind("shipping", "binding-1", &body)
            .await
            .status,
        200,
        "identical again"
    );
    // "with the same id … but with different parameters": bind_resource too.
    for (field, value) in [
        ("parameters", json!({"x": 1})),
        ("bind_resource", json!({"app_guid": "other-app"})),
    ] {
        let mut other = body.clone();
        other[field] = value;
        let reply = broker.osb().bind("shipping", "binding-1", &other).await;
        assert_eq!(reply.status, 409, "{field}: {}", reply.text);
    }
    let plan = plan_of(SHIPPING_SERVICE);
    // An unbind naming another service's ids is refused, and unbinds nothing.
    let wrong = broker
        .osb()
        .unbind(
            "shipping",
            "binding-1",
            ORDER_SERVICE,
            &plan_of(ORDER_SERVICE),
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    assert!(wrong.message().contains("service_id"), "{}", wrong.text);
    assert_eq!(
        broker
            .osb()
            .unbind("shipping", "binding-1", SHIPPING_SERVICE, &plan)
            .await
            .status,
        200
    );
    assert_eq!(
        broker
            .osb()
            .unbind("shipping", "binding-1", SHIPPING_SERVICE, &plan)
            .await
            .status,
        410
    );
    assert_eq!(
        broker.osb().bind("nobody", "binding-1", &body).await.status,
        404
    );
    // A binding left on an instance that was then deprovisioned is gone with it.
    let bound = broker.osb().bind("shipping", "binding-2", &body).await;
    assert_eq!(bound.status, 201, "{}", bound.text);
    broker
        .osb()
        .deprovision_and_wait("shipping", SHIPPING_SERVICE, &plan)
        .await;
    assert_eq!(
        broker
            .osb()
            .unbind("shipping", "binding-2", SHIPPING_SERVICE, &plan)
            .await
            .status,
        410
    );
}

#[tokio::test]
async fn instances_under_a_namespace_prefix_stay_in_that_namespace() {
    let broker = provisioned(&["team-a", "team-b"]).await;
    let reply = broker.osb_in("team-b").fetch(INSTANCE).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(broker.osb_in("team-a").fetch(INSTANCE).await.status, 200);
    let plan = plan_of(ORDER_SERVICE);
    assert_eq!(
        broker
            .osb_in("team-b")
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, true)
            .await
            .status,
        400
    );
    assert_eq!(broker.osb().fetch(INSTANCE).await.status, 200, "untouched");
}

#[tokio::test]
async fn binding_while_the_instance_is_provisioned_is_422_concurrency_error() {
    let broker = Broker::start().await;
    commerce_with_unready_channel(&broker, &["team-a"]).await;
    let started = broker
        .osb()
        .provision(
            "shipping",
            &provision_body(SHIPPING_SERVICE, "team-a"),
            true,
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.text);
    let body = json!({"service_id": SHIPPING_SERVICE, "plan_id": plan_of(SHIPPING_SERVICE)});
    let busy = broker.osb().bind("shipping", "binding-1", &body).await;
    assert_eq!(busy.status, 422, "{}", busy.text);
    assert_eq!(busy.body["error"], "ConcurrencyError");
    make_channel_ready(&broker).await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    assert_eq!(
        broker.osb().finished("shipping", &operation).await.body["state"],
        "succeeded"
    );
    let bound = broker.osb().bind("shipping", "binding-1", &body).await;
    assert_eq!(
        bound.status, 201,
        "the refused bind changed nothing: {}",
        bound.text
    );
}

#[tokio::test]
async fn a_finished_deprovision_polls_succeeded_within_the_retention() {
    let broker = provisioned(&["team-a"]).await;
    let started = broker
        .osb()
        .deprovision(INSTANCE, ORDER_SERVICE, &plan_of(ORDER_SERVICE), true)
        .await;
    assert_eq!(started.status, 202, "{}", started.text);
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    let done = broker.osb().finished(INSTANCE, &operation).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["state"], "succeeded");
    // Without its id, or with the operation's kind as the osb-checker polls.
    for operation in [None, Some("deprovision")] {
        let polled = broker.osb().last_operation(INSTANCE, operation).await;
        assert_eq!(polled.status, 200, "{operation:?}: {}", polled.text);
        assert_eq!(polled.body["state"], "succeeded", "{}", polled.text);
    }
}

#[tokio::test]
async fn deprovisioned_instances_are_forgotten_after_the_retention() {
    let broker = Broker::start_with(&["--deprovisioned-retention", "1s"]).await;
    commerce_in(&broker, &["team-a"]).await;
    let body = provision_body(ORDER_SERVICE, "team-a");
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    let plan = plan_of(ORDER_SERVICE);
    let started = broker
        .osb()
        .deprovision(INSTANCE, ORDER_SERVICE, &plan, true)
        .await;
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    broker.osb().finished(INSTANCE, &operation).await;
    let record = format!("/apis/meshbroker.io/v1alpha1/serviceinstances/{INSTANCE}");
    crate::common::eventually("the tombstone to be forgotten", async || {
        broker.admin().find(&record).await.is_none().then_some(())
    })
    .await;
    let polled = broker
        .osb()
        .last_operation(INSTANCE, Some(&operation))
        .await;
    assert_eq!(polled.status, 410, "{}", polled.text);
    assert_eq!(
        broker.osb().last_operation(INSTANCE, None).await.status,
        404,
        "an instance the broker no longer knows"
    );
    assert_eq!(
        broker
            .osb()
            .last_operation(INSTANCE, Some("op-0123456789abcdef0123"))
            .await
            .status,
        404,
        "an operation that was never a deprovision"
    );
    for (instance, operation, why) in [
        (
            "never-was",
            operation.as_str(),
            "another instance's deprovision",
        ),
        (INSTANCE, "op-deprovision-abc", "a made-up deprovision"),
    ] {
        let polled = broker.osb().last_operation(instance, Some(operation)).await;
        assert_eq!(polled.status, 404, "{why}: {}", polled.text);
    }
    assert_eq!(
        broker
            .osb()
            .deprovision(INSTANCE, ORDER_SERVICE, &plan, true)
            .await
            .status,
        410
    );
    broker.osb().provision_and_wait(INSTANCE, &body).await;
    assert_eq!(
        broker.osb().fetch(INSTANCE).await.status,
        200,
        "the id is free again"
    );
}

#[tokio::test]
async fn a_fetch_or_poll_naming_another_service_or_plan_is_400() {
    let broker = provisioned(&["team-a"]).await;
    let osb = broker.osb();
    let plan = plan_of(ORDER_SERVICE);
    let ask = async |path: &str, template: &str, query: String| {
        let url = format!("{path}?{query}");
        osb.send(osb.request(reqwest::Method::GET, &url), "get", template)
            .await
    };
    let instance = format!("/v2/service_instances/{INSTANCE}");
    let polled = format!("{instance}/last_operation");
    let fetch_template = "/v2/service_instances/{instance_id}";
    let poll_template = "/v2/service_instances/{instance_id}/last_operation";
    for (path, template) in [(&instance, fetch_template), (&polled, poll_template)] {
        let right = ask(
            path,
            template,
            format!("service_id={ORDER_SERVICE}&plan_id={plan}"),
        )
        .await;
        assert_eq!(right.status, 200, "{path}: {}", right.text);
        let other_service = ask(path, template, "service_id=another".into()).await;
        assert_eq!(other_service.status, 400, "{path}: {}", other_service.text);
        assert!(other_service.message().contains("service_id another"));
        let other_plan = ask(path, template, format!("plan_id={ORDER_SERVICE}-gold")).await;
        assert_eq!(other_plan.status, 400, "{path}: {}", other_plan.text);
        let empty = ask(path, template, "service_id=".into()).await;
        assert_eq!(empty.status, 400, "{path}: {}", empty.text);
    }
}

#[tokio::test]
async fn an_id_spelled_like_another_ids_record_name_reaches_nothing_of_it() {
    // `Mixed-Case` is no object name, so its record is named by a digest of it;
    // an id that is that digest's spelling is another instance.
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let id = "Mixed-Case";
    broker
        .osb()
        .provision_and_wait(id, &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    let digest = {
        use sha2::{Digest, Sha256};
        let hex: String = Sha256::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("i-{}", &hex[..40])
    };
    assert_eq!(broker.osb().fetch(&digest).await.status, 404);
    let plan = plan_of(ORDER_SERVICE);
    let gone = broker
        .osb()
        .deprovision(&digest, ORDER_SERVICE, &plan, true)
        .await;
    assert_eq!(gone.status, 410, "{}", gone.text);
    let kept = broker.osb().fetch(id).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
}
