//! Test objects: the example commerce Application from examples/, its services'
//! ids, namespaces and mappings, and OSB request bodies.

use serde_json::{Value, json};

use super::{Broker, Reply};

pub const ORDER_SERVICE: &str = "5a5f1e0c-8a6d-4c33-9d57-2a3c0a0e7b11";
pub const SHIPPING_SERVICE: &str = "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
pub const APPLICATION: &str = "commerce";
pub const INTEGRATION: &str = "kyma-integration";

pub fn plan_of(service: &str) -> String {
    format!("{service}-plan-default")
}

pub fn example(name: &str) -> String {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub const APPLICATIONS: &str = "/apis/applicationconnector.kyma-project.io/v1alpha1/applications";
pub const NAMESPACES: &str = "/api/v1/namespaces";
pub const SERVICE_INSTANCES: &str = "/apis/meshbroker.io/v1alpha1/serviceinstances";

pub fn mappings(namespace: &str) -> String {
    format!(
        "/apis/applicationconnector.kyma-project.io/v1alpha1/namespaces/{namespace}/applicationmappings"
    )
}

pub fn brokers(namespace: &str) -> String {
    format!("/apis/eventing.knative.dev/v1/namespaces/{namespace}/brokers")
}

pub fn triggers(namespace: &str) -> String {
    format!("/apis/eventing.knative.dev/v1/namespaces/{namespace}/triggers")
}

pub fn subscriptions() -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{INTEGRATION}/subscriptions")
}

pub fn channels() -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{INTEGRATION}/channels")
}

pub fn access_tokens(namespace: &str) -> String {
    format!("/apis/meshbroker.io/v1alpha1/namespaces/{namespace}/accesstokens")
}

fn created(reply: Reply, what: &str) {
    assert!(
        reply.status == 201,
        "creating {what}: {} {}",
        reply.status,
        reply.text
    );
}

pub async fn create_namespace(broker: &Broker, name: &str) {
    let reply = broker
        .admin()
        .create(
            NAMESPACES,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await;
    created(reply, name);
}

/// Registers the example Application; returns its event ingress credential.
pub async fn register_commerce(broker: &Broker) -> String {
    let reply = broker
        .admin()
        .create_yaml(APPLICATIONS, &example("order-service.application.yaml"))
        .await;
    let token = reply.body["status"]["credential"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    created(reply, "the commerce Application");
    token
}

/// Maps commerce into `namespace`; `services` narrows it (empty: all services).
pub async fn map_commerce(broker: &Broker, namespace: &str, services: &[&str]) {
    let services: Vec<Value> = services.iter().map(|id| json!({"id": id})).collect();
    let mapping = json!({
        "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
        "kind": "ApplicationMapping",
        "metadata": {"name": APPLICATION},
        "spec": {"services": services},
    });
    created(
        broker.admin().create(&mappings(namespace), &mapping).await,
        "the mapping",
    );
}

/// The commerce Application registered, and mapped into each namespace (created).
pub async fn commerce_in(broker: &Broker, namespaces: &[&str]) -> String {
    let token = register_commerce(broker).await;
    for namespace in namespaces {
        create_namespace(broker, namespace).await;
        map_commerce(broker, namespace, &[]).await;
    }
    token
}

/// A provision body for a Kubernetes platform targeting `namespace`.
pub fn provision_body(service: &str, namespace: &str) -> Value {
    json!({
        "service_id": service,
        "plan_id": plan_of(service),
        "organization_guid": "cluster-1",
        "space_guid": namespace,
        "context": {"platform": "kubernetes", "namespace": namespace, "clusterid": "cluster-1"},
    })
}

/// A Channel whose dead-letter sink names a Broker that does not exist, so it
/// stays not Ready (its `delivery` can be changed; its `channelTemplate` cannot).
pub fn unready_channel() -> Value {
    json!({
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "Channel",
        "metadata": {"name": APPLICATION, "namespace": INTEGRATION},
        "spec": {"delivery": {"deadLetterSink": {"ref": {
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "nowhere"}}}},
    })
}

/// Gives the commerce Channel a spec with which it becomes ready.
pub async fn make_channel_ready(broker: &Broker) {
    respec_commerce_channel(broker, json!({})).await;
}

/// Gives the commerce Channel a dead-letter sink that cannot resolve, so it stops
/// being ready (and nothing waiting for it can finish).
pub async fn make_channel_unready(broker: &Broker) {
    respec_commerce_channel(broker, unready_channel()["spec"].clone()).await;
}

/// Replaces the commerce Channel's spec, reading it again when its controller
/// wrote its status in between (a 409, as a Kubernetes client retries on conflict).
pub async fn respec_commerce_channel(broker: &Broker, spec: Value) {
    let path = format!("{}/{APPLICATION}", channels());
    super::eventually("the commerce Channel to take its new spec", async || {
        let mut channel = settled(broker, &path).await;
        channel["spec"] = spec.clone();
        let reply = broker.admin().put(&path, &channel).await;
        match reply.status {
            200 => Some(()),
            409 => None,
            _ => panic!("replacing the commerce Channel: {}", reply.text),
        }
    })
    .await;
}

/// Waits until the commerce Channel reports Ready.
pub async fn channel_ready(broker: &Broker) {
    let path = format!("{}/{APPLICATION}", channels());
    super::eventually("the commerce Channel to be ready", async || {
        let channel = broker.admin().find(&path).await?;
        let ready = channel["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    })
    .await;
}

/// Blocks the commerce Channel from becoming ready before the Application exists
/// (the Application controller adopts an existing Channel rather than replace it).
pub async fn commerce_with_unready_channel(broker: &Broker, namespaces: &[&str]) {
    let reply = broker.admin().create(&channels(), &unready_channel()).await;
    created(reply, "the unready Channel");
    commerce_in(broker, namespaces).await;
}

/// The object at `path` once its controller has caught up with its spec
/// (`status.observedGeneration == metadata.generation`), so a replace built from
/// it does not race the controller's own status write.
pub async fn settled(broker: &Broker, path: &str) -> Value {
    super::eventually(&format!("{path} to be reconciled"), async || {
        let object = broker.admin().find(path).await?;
        let generation = &object["metadata"]["generation"];
        (!generation.is_null() && object["status"]["observedGeneration"] == *generation)
            .then_some(object)
    })
    .await
}
