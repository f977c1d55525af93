//! A namespace deleted under a provisioning operation (embedded store only: a
//! test API server has no namespace controller to empty a deleted namespace,
//! and meshbroker's ClusterRole may not delete namespaces).

use serde_json::json;

use crate::common::fixtures::*;
use crate::common::{Broker, eventually};

#[tokio::test]
async fn a_namespace_deleted_while_provisioning_fails_the_operation_at_once() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    // A Broker `default` of another implementation: never Ready here, so the
    // operation waits at broker-ready for as long as the test needs.
    let other = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
        "metadata": {"name": "default", "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"}},
        "spec": {}});
    let created = broker.admin().create(&brokers("team-a"), &other).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let started = broker
        .osb()
        .provision("orders", &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(started.status, 202, "{}", started.text);
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    eventually("the operation to wait for the Broker", async || {
        let reply = broker
            .osb()
            .last_operation("orders", Some(&operation))
            .await;
        reply.message().contains("broker-ready").then_some(())
    })
    .await;

    let deleted = broker.admin().delete(&format!("{NAMESPACES}/team-a")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    // Failed within the harness deadline, not the ten-minute operation timeout:
    // the platform may deprovision (and provision again) straight away.
    let done = broker.osb().finished("orders", &operation).await;
    assert_eq!(done.body["state"], "failed", "{}", done.text);
    assert!(
        done.message().contains("namespace team-a was deleted"),
        "{}",
        done.text
    );
    let plan = plan_of(ORDER_SERVICE);
    broker
        .osb()
        .deprovision_and_wait("orders", ORDER_SERVICE, &plan)
        .await;
}
