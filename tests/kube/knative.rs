//! `--dataplane knative`: meshbroker writes the Channel, Broker and Subscription,
//! waits for Knative to report them Ready, and forwards Application ingress to the
//! Channel's address. There are no Knative controllers on the test API server, so
//! the test plays Knative: it writes their status (as an administrator, through
//! the `/status` subresource) and serves the Channel's address with a recording
//! sink.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::kube::Cluster;
use crate::common::mesh::send_order;
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

fn api(
    cluster: &Cluster,
    group: &str,
    kind: &str,
    plural: &str,
    namespace: &str,
) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(cluster.admin.clone(), namespace, &resource)
}

/// What Knative's controllers would write once the object works.
async fn report_ready(objects: &Api<DynamicObject>, name: &str, address: Option<&str>) {
    let mut status = json!({
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-28T00:00:00Z"}],
    });
    if let Some(url) = address {
        status["address"] = json!({"url": url});
    }
    objects
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap_or_else(|e| panic!("playing Knative: status of {name}: {e}"));
}

/// The description of the operation once it names `waiting_for`.
async fn waits_for(broker: &Broker, instance: &str, operation: &str, waiting_for: &str) -> String {
    eventually(
        &format!("the operation to wait for {waiting_for}"),
        async || {
            let reply = broker.osb().last_operation(instance, Some(operation)).await;
            assert_eq!(reply.body["state"], "in progress", "{}", reply.text);
            let description = reply.body["description"].as_str()?.to_string();
            description.contains(waiting_for).then_some(description)
        },
    )
    .await
}

#[tokio::test]
async fn with_knative_meshbroker_writes_the_objects_waits_for_knative_and_forwards_ingress() {
    let cluster = Cluster::start().await;
    let broker = Broker::start_in(cluster, &["--dataplane", "knative"]).await;
    let cluster = broker.cluster();
    let token = commerce_in(&broker, &["team-a"]).await;
    let reply = broker
        .osb()
        .provision("orders", &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let operation = reply.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();

    // 1. The Application's Channel: meshbroker writes it and leaves its status to Knative.
    let description = waits_for(
        &broker,
        "orders",
        &operation,
        "waiting for Knative to report Channel kyma-integration/commerce Ready",
    )
    .await;
    assert!(
        description.contains("no Ready condition yet"),
        "{description}"
    );
    let channels = api(
        cluster,
        "messaging.knative.dev",
        "Channel",
        "channels",
        INTEGRATION,
    );
    let channel = channels.get(APPLICATION).await.expect("the Channel exists");
    assert_eq!(
        channel.data.get("status"),
        None,
        "meshbroker writes no Channel status: {channel:?}"
    );
    let knative_channel = Sink::start().await;
    report_ready(&channels, APPLICATION, Some(&knative_channel.url)).await;

    // 2. The namespace's Broker: labelled, created with Knative's class, left to Knative.
    waits_for(
        &broker,
        "orders",
        &operation,
        "waiting for Knative to report Broker team-a/default Ready",
    )
    .await;
    let brokers = api(
        cluster,
        "eventing.knative.dev",
        "Broker",
        "brokers",
        "team-a",
    );
    let created = brokers.get("default").await.expect("the Broker exists");
    let annotations = created.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("eventing.knative.dev/broker.class")
            .map(String::as_str),
        Some("MTChannelBasedBroker")
    );
    let labels = created.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("meshbroker")
    );
    let namespace = broker
        .admin()
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["knative-eventing-injection"],
        "enabled"
    );
    report_ready(
        &brokers,
        "default",
        Some("http://broker-ingress.knative-eventing.svc.cluster.local/team-a/default"),
    )
    .await;

    // 3. The Subscription from the Channel to the Broker.
    let description = waits_for(
        &broker,
        "orders",
        &operation,
        "waiting for Knative to report Subscription",
    )
    .await;
    let name = description
        .split("Subscription kyma-integration/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the Subscription's name")
        .to_string();
    let subscriptions = api(
        cluster,
        "messaging.knative.dev",
        "Subscription",
        "subscriptions",
        INTEGRATION,
    );
    let subscription = subscriptions
        .get(&name)
        .await
        .expect("the Subscription exists");
    assert_eq!(
        subscription.data["spec"]["subscriber"]["ref"],
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default", "namespace": "team-a"})
    );
    report_ready(&subscriptions, &name, None).await;
    let done = broker.osb().finished("orders", &operation).await;
    assert_eq!(done.body["state"], "succeeded", "{}", done.text);

    // Ingress: forwarded to the Channel's address, acknowledged only once it took it.
    let reply = eventually(
        "the ingress to forward to the Knative Channel",
        async || {
            let reply = send_order(&broker, &token, "o-1").await;
            (reply.status != 503).then_some(reply)
        },
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let received = knative_channel.wait_for(1).await;
    assert_eq!(received[0].header("ce-id"), Some("o-1"));
    assert_eq!(
        received[0].header("ce-source"),
        Some(APPLICATION),
        "the source is the Application"
    );
    assert_eq!(received[0].header("ce-type"), Some("order.created"));
    assert_eq!(&received[0].body[..], br#"{"orderId":"1"}"#);

    knative_channel.answer(&[503], "channel overloaded");
    let refused = send_order(&broker, &token, "o-2").await;
    assert_eq!(refused.status, 502, "{}", refused.text);
    assert_eq!(refused.body["error"], "ChannelRefused");
    let said = refused.body["description"].as_str().unwrap_or_default();
    assert!(
        said.contains("503") && said.contains("channel overloaded"),
        "{said}"
    );
    assert!(refused.header("retry-after").is_some());

    // Deprovisioning unwinds what meshbroker created: Subscription, Broker, label.
    broker
        .osb()
        .deprovision_and_wait("orders", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    assert!(subscriptions.get_opt(&name).await.expect("GET").is_none());
    assert!(brokers.get_opt("default").await.expect("GET").is_none());
    let namespace: Value = broker
        .admin()
        .find(&format!("{NAMESPACES}/team-a"))
        .await
        .expect("namespace");
    assert!(namespace["metadata"]["labels"]["knative-eventing-injection"].is_null());
}

#[tokio::test]
async fn knative_without_the_kube_store_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args(["serve", "--dataplane", "knative", "--data-dir"])
        .arg(tempfile::tempdir().expect("dir").path())
        .output()
        .expect("meshbroker runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("dataplane") && said.contains("--store kube"),
        "{said}"
    );
}
