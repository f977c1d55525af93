//! References to kinds meshbroker does not serve, resolved as Knative resolves an
//! Addressable: the object's `status.address.url`. The test API server has no
//! Knative Serving, so the test installs its Service CRD (only what resolving
//! reads: any object with a status) and writes the status Knative Serving would.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::kube::Cluster;
use crate::common::mesh::{provisioned, ready, send_order};
use crate::common::sink::Sink;
use crate::common::{Broker, eventually, within};

/// A resolved reference is read again this often (OTHER_KINDS_RECHECK), plus
/// the time a status write and a routing rebuild take.
const RECHECKED: Duration = Duration::from_secs(45);

async fn install_knative_services(cluster: &Cluster) -> Api<DynamicObject> {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "services.serving.knative.dev"},
        "spec": {
            "group": "serving.knative.dev", "scope": "Namespaced",
            "names": {"plural": "services", "singular": "service", "kind": "Service", "listKind": "ServiceList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .expect("a CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.admin.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("the Knative Service CRD");
    let resource = ApiResource {
        group: "serving.knative.dev".into(),
        version: "v1".into(),
        api_version: "serving.knative.dev/v1".into(),
        kind: "Service".into(),
        plural: "services".into(),
    };
    let services = Api::namespaced_with(cluster.admin.clone(), "team-a", &resource);
    eventually("the Knative Service CRD to be served", async || {
        services.list(&Default::default()).await.ok().map(|_| ())
    })
    .await;
    services
}

/// A Knative Service `hello` as Knative Serving reports it once it runs at `url`.
fn knative_service(url: &str, resource_version: Option<&str>) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "hello", "namespace": "team-a", "resourceVersion": resource_version},
        "spec": {"template": {"spec": {"containers": [{"image": "example/hello"}]}}},
        "status": {"address": {"url": url}, "url": "http://hello.team-a.example.com"}
    }))
    .expect("a Knative Service")
}

/// Creates Trigger `name` in team-a delivering to `reference`; once its
/// SubscriberResolved is False, its path and the condition's message.
async fn unresolved_trigger(broker: &Broker, name: &str, reference: Value) -> (String, String) {
    let trigger = json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": name},
        "spec": {"broker": "default", "subscriber": {"ref": reference}}
    });
    let reply = broker.admin().create(&triggers("team-a"), &trigger).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let path = format!("{}/{name}", triggers("team-a"));
    let message = eventually(&format!("SubscriberResolved False of {path}"), async || {
        let object = broker.admin().find(&path).await?;
        let conditions = object["status"]["conditions"].as_array()?.clone();
        let unresolved = conditions
            .into_iter()
            .find(|c| c["type"] == "SubscriberResolved" && c["status"] == "False")?;
        Some(
            unresolved["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    })
    .await;
    (path, message)
}

#[tokio::test]
async fn a_trigger_to_a_knative_service_resolves_its_address_and_follows_it() {
    let cluster = Cluster::start().await;
    let services = install_knative_services(&cluster).await;
    let broker = Broker::start_in(cluster, &[]).await;
    let token = provisioned(&broker, &["team-a"]).await;
    let reference =
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"});
    let (path, why) = unresolved_trigger(&broker, "to-hello", reference).await;
    assert!(why.contains("Service team-a/hello does not exist"), "{why}");

    // Knative Serving runs it: the Trigger resolves its address and delivers there.
    let first = Sink::start().await;
    let created = services
        .create(&PostParams::default(), &knative_service(&first.url, None))
        .await
        .expect("the Knative Service");
    let resolved = within(
        RECHECKED,
        "the Trigger to resolve the Service",
        async || {
            let object = broker.admin().find(&path).await?;
            (object["status"]["subscriberUri"] == first.url.as_str()).then_some(object)
        },
    )
    .await;
    assert_eq!(resolved["status"]["subscriberUri"], first.url.as_str());
    ready(&broker, &path).await;
    assert_eq!(send_order(&broker, &token, "o-1").await.status, 202);
    assert_eq!(first.wait_for(1).await[0].header("ce-id"), Some("o-1"));

    // Its address moves (no watch says so): the next look finds it.
    let second = Sink::start().await;
    services
        .replace(
            "hello",
            &PostParams::default(),
            &knative_service(&second.url, created.metadata.resource_version.as_deref()),
        )
        .await
        .expect("the Knative Service moved");
    within(RECHECKED, "the Trigger to follow the Service", async || {
        let object = broker.admin().find(&path).await?;
        (object["status"]["subscriberUri"] == second.url.as_str()).then_some(())
    })
    .await;
    ready(&broker, &path).await;
    eventually("an event at the Service's new address", async || {
        assert_eq!(send_order(&broker, &token, "o-2").await.status, 202);
        tokio::time::sleep(Duration::from_millis(200)).await;
        (second.count() > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_kind_the_api_server_does_not_serve_is_an_unresolved_reference_naming_it() {
    let cluster = Cluster::start().await;
    let broker = Broker::start_in(cluster, &[]).await;
    provisioned(&broker, &["team-a"]).await;
    let reference = json!({"apiVersion": "sinks.example.dev/v1", "kind": "Sink", "name": "s"});
    let (_, why) = unresolved_trigger(&broker, "to-nothing", reference).await;
    assert!(
        why.contains("serves no Sink of sinks.example.dev/v1"),
        "{why}"
    );
}
