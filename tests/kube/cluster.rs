//! What only a real cluster brings: RBAC deciding what meshbroker may do,
//! resourceVersion conflicts raised by the API server, and an API server that
//! restarts under a running meshbroker.

use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::json;

use crate::common::fixtures::*;
use crate::common::kube::{Cluster, deploy_object};
use crate::common::mesh::{
    binary, catch_all, namespace_token, post, provisioned, send_order, trigger,
};
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

#[tokio::test]
async fn a_cluster_role_without_updating_namespaces_fails_provisioning_clearly() {
    let mut role: ClusterRole = deploy_object("ClusterRole");
    for rule in role.rules.iter_mut().flatten() {
        if rule
            .resources
            .as_ref()
            .is_some_and(|r| r.contains(&"namespaces".to_string()))
        {
            rule.verbs.retain(|verb| verb != "update");
        }
    }
    let cluster = Cluster::start_with_role(role).await;
    let broker = Broker::start_in(cluster, &["--operation-timeout", "2s"]).await;
    commerce_in(&broker, &["team-a"]).await;
    let reply = broker
        .osb()
        .provision("orders", &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let operation = reply.body["operation"].as_str().expect("operation");
    let done = broker.osb().finished("orders", operation).await;
    assert_eq!(done.body["state"], "failed", "{}", done.text);
    let said = done.body["description"].as_str().unwrap_or_default();
    assert!(
        said.contains("label-namespace")
            && said.contains("forbids meshbroker")
            && said.contains("ClusterRole")
            && said.contains("cannot update resource \"namespaces\""),
        "the failure names the step and the missing right: {said}"
    );
}

/// The README's walk-through with kubectl starts with the example files:
/// the API server (and kubectl's validation against its schemas) takes them.
#[tokio::test]
async fn the_example_files_apply_with_kubectl() {
    let cluster = Cluster::start().await;
    for example in [
        "order-service.application.yaml",
        "team-a.namespace.yaml",
        "commerce.mapping.yaml",
    ] {
        let file = format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR"));
        if let Err(why) = cluster.kubectl(&["apply", "-f", &file]) {
            panic!("{example}: {why}");
        }
    }
}

/// Kubernetes checks no CESQL: a Trigger written past meshbroker whose filter
/// does not compile is not routed, and its status says why.
#[tokio::test]
async fn a_trigger_whose_filter_does_not_compile_says_so() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let bad = json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": "bad-sql", "namespace": "team-a"},
        "spec": {"broker": "default", "filters": [{"cesql": "type = "}], "subscriber": {"uri": "http://127.0.0.1:9/"}},
    });
    broker.cluster().create_past_meshbroker(&bad);
    let said = eventually("the Trigger's status to say why", async || {
        let trigger = broker
            .admin()
            .find(&format!("{}/bad-sql", triggers("team-a")))
            .await?;
        let conditions = trigger["status"]["conditions"].as_array()?.clone();
        let ready = conditions.iter().find(|c| c["type"] == "Ready")?.clone();
        (ready["status"] == "False").then_some(conditions)
    })
    .await;
    let subscription = said
        .iter()
        .find(|c| c["type"] == "SubscriptionReady")
        .expect("SubscriptionReady");
    assert_eq!(subscription["status"], "False");
    assert_eq!(subscription["reason"], "FilterInvalid");
    assert!(
        subscription["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.filters[0]")),
        "{subscription}"
    );
}

/// The API server takes JSON nested deeper than meshbroker's decoder does
/// wherever a schema keeps unknown fields (a Trigger's `filters`). What
/// follows the kind leaves such an object out, as if absent; it stops no
/// watch of its kind (before, no Trigger anywhere became Ready and the
/// Broker routed nothing new).
#[tokio::test]
async fn an_object_nested_too_deep_is_left_out_and_holds_back_no_one() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let mut filter = json!({"exact": {"type": "order.created"}});
    for _ in 0..200 {
        filter = json!({"not": filter});
    }
    let deep = json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": "deep", "namespace": "team-a"},
        "spec": {"broker": "default", "filters": [filter], "subscriber": {"uri": "http://127.0.0.1:9/"}},
    });
    broker.cluster().create_past_meshbroker(&deep);

    let sink = catch_all(&broker, "team-a").await;
    assert_eq!(send_order(&broker, &token, "after-deep").await.status, 202);
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].header("ce-id"), Some("after-deep"));
    // A plain list is not answered without it; the log names it.
    let listed = broker.admin().get(&triggers("team-a")).await;
    assert_eq!(listed.status, 500, "{}", listed.text);
    assert!(broker.log().contains("team-a/deep"), "the log names it");
}

#[tokio::test]
async fn the_deploy_cluster_role_grants_no_more_than_meshbroker_needs() {
    // Secrets, pods and deleting namespaces are none of meshbroker's business.
    let cluster = Cluster::start().await;
    let broker = Broker::start_in(cluster, &[]).await;
    create_namespace(&broker, "team-a").await;
    let deleted = broker.admin().delete(&format!("{NAMESPACES}/team-a")).await;
    assert_eq!(deleted.status, 500, "{}", deleted.text);
    assert!(
        deleted
            .message()
            .contains("cannot delete resource \"namespaces\""),
        "{}",
        deleted.text
    );
}

#[tokio::test]
async fn a_stale_resource_version_is_a_conflict_naming_it() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    let path = format!("{APPLICATIONS}/{APPLICATION}");
    let read = settled(&broker, &path).await;
    let stale = read["metadata"]["resourceVersion"]
        .as_str()
        .expect("version")
        .to_string();
    let mut changed = read.clone();
    changed["spec"]["description"] = json!("first writer");
    let first = broker.admin().put(&path, &changed).await;
    assert_eq!(first.status, 200, "{}", first.text);
    changed["spec"]["description"] = json!("second writer, from the old read");
    let second = broker.admin().put(&path, &changed).await;
    assert_eq!(second.status, 409, "{}", second.text);
    assert_eq!(second.body["reason"], "Conflict");
    assert!(second.message().contains(&stale), "{}", second.text);
    let kept = broker.admin().find(&path).await.expect("Application");
    assert_eq!(kept["spec"]["description"], "first writer");
}

#[tokio::test]
async fn watches_reconnect_after_the_api_server_restarts() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let before = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "before",
        json!({"subscriber": {"uri": before.url}}),
    )
    .await;
    assert_eq!(send_order(&broker, &token, "o-1").await.status, 202);
    before.wait_for(1).await;

    broker.cluster().restart_apiserver();

    // Controllers see new objects again (the Trigger becomes Ready), the routing
    // table follows (events reach it), and so does the token cache.
    let after = Sink::start().await;
    eventually("the resource API to write again", async || {
        let body = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "after"},
            "spec": {"broker": "default", "subscriber": {"uri": after.url}},
        });
        // Not through `admin()`, which fails the test on a connection error:
        // while the API server restarts, a request may also end that way.
        let sent = broker
            .http
            .post(format!("{}{}", broker.control, triggers("team-a")))
            .bearer_auth(&broker.admin_token)
            .json(&body)
            .send()
            .await
            .ok()?;
        (sent.status() == 201).then_some(())
    })
    .await;
    crate::common::mesh::ready(&broker, &format!("{}/after", triggers("team-a"))).await;
    assert_eq!(send_order(&broker, &token, "o-2").await.status, 202);
    let received = after.wait_for(1).await;
    assert_eq!(received[0].header("ce-id"), Some("o-2"));

    let sender = namespace_token(&broker, "team-a", "sender").await;
    eventually("a token issued after the restart to work", async || {
        let reply = post(
            &broker,
            "/team-a/default",
            &sender,
            &binary("b-1", "note"),
            "{}",
        )
        .await;
        (reply.status == 202).then_some(())
    })
    .await;
    eventually("the broker-ingress event to arrive", async || {
        after
            .received()
            .iter()
            .any(|r| r.header("ce-id") == Some("b-1"))
            .then_some(())
    })
    .await;
}
