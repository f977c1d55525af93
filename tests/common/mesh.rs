//! Dataplane helpers: a provisioned mesh, Triggers that wait until Ready, and
//! sending events to the events listener.

use reqwest::Method;
use serde_json::{Value, json};

use super::fixtures::*;
use super::sink::Sink;
use super::{Broker, Reply, eventually};

/// commerce registered and provisioned into each namespace; its credential.
pub async fn provisioned(broker: &Broker, namespaces: &[&str]) -> String {
    let token = commerce_in(broker, namespaces).await;
    for namespace in namespaces {
        let instance = format!("orders-{namespace}");
        broker
            .osb()
            .provision_and_wait(&instance, &provision_body(ORDER_SERVICE, namespace))
            .await;
    }
    token
}

/// Creates a Trigger on Broker `default` and waits until it is Ready and routed.
pub async fn trigger(broker: &Broker, namespace: &str, name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("broker").is_none() {
        spec["broker"] = json!("default");
    }
    let body = json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": name}, "spec": spec,
    });
    let reply = broker.admin().create(&triggers(namespace), &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    ready(broker, &format!("{}/{name}", triggers(namespace))).await
}

/// A recording subscriber behind a Trigger `all` on `namespace`'s Broker that
/// takes every event.
pub async fn catch_all(broker: &Broker, namespace: &str) -> Sink {
    let sink = Sink::start().await;
    trigger(
        broker,
        namespace,
        "all",
        json!({"subscriber": {"uri": sink.url}}),
    )
    .await;
    sink
}

/// Waits until the object at `path` has condition Ready=True.
pub async fn ready(broker: &Broker, path: &str) -> Value {
    eventually(&format!("{path} to be Ready"), async || {
        let object = broker.admin().find(path).await?;
        let conditions = object["status"]["conditions"].as_array()?;
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(object)
    })
    .await
}

/// A binary-mode event's headers.
pub fn binary(id: &str, ty: &str) -> Vec<(String, String)> {
    vec![
        ("ce-specversion".into(), "1.0".into()),
        ("ce-id".into(), id.into()),
        ("ce-source".into(), "/sender".into()),
        ("ce-type".into(), ty.into()),
        ("content-type".into(), "application/json".into()),
    ]
}

/// A structured-mode event's headers (the event is the body).
pub fn structured_mode() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/cloudevents+json".into())]
}

/// POSTs to the events listener at `path` with a bearer token.
pub async fn post(
    broker: &Broker,
    path: &str,
    token: &str,
    headers: &[(String, String)],
    body: &str,
) -> Reply {
    let mut request = broker
        .http
        .post(format!("{}{path}", broker.events))
        .bearer_auth(token)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let reply = Reply::from(request.send().await.expect("events request")).await;
    super::openapi::events().check("post", &super::openapi::event_template(path), &reply);
    reply
}

/// Sends a note.taken event with id `id` once the broker knows `token` (its
/// token cache follows the store, so a token just issued takes a moment).
pub async fn post_when_token_known(broker: &Broker, path: &str, token: &str, id: &str) {
    eventually("the token to be known", async || {
        let reply = post(broker, path, token, &binary(id, "note.taken"), "{}").await;
        (reply.status == 202).then_some(())
    })
    .await;
}

/// An order.created v1 event (its payload satisfies the example's schema).
pub async fn send_order(broker: &Broker, token: &str, id: &str) -> Reply {
    send_order_with(broker, token, id, &[]).await
}

/// An order.created v1 event with `extra` headers besides its own.
pub async fn send_order_with(
    broker: &Broker,
    token: &str,
    id: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut headers = binary(id, "order.created");
    headers.push(("ce-eventtypeversion".into(), "v1".into()));
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    post(
        broker,
        "/commerce/events",
        token,
        &headers,
        r#"{"orderId":"1"}"#,
    )
    .await
}

/// Any method on the events listener, for method tests.
pub async fn request(broker: &Broker, method: Method, path: &str, token: &str) -> Reply {
    let verb = method.as_str().to_ascii_lowercase();
    let request = broker
        .http
        .request(method, format!("{}{path}", broker.events))
        .bearer_auth(token);
    let reply = Reply::from(request.send().await.expect("events request")).await;
    super::openapi::events().check(&verb, &super::openapi::event_template(path), &reply);
    reply
}

/// Issues a namespace token.
pub async fn namespace_token(broker: &Broker, namespace: &str, name: &str) -> String {
    access_token(broker, namespace, name, json!({})).await
}

/// Creates an AccessToken with `spec` (as the admin); answers its token.
pub async fn access_token(broker: &Broker, namespace: &str, name: &str, spec: Value) -> String {
    let body = json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken", "metadata": {"name": name}, "spec": spec});
    let reply = broker
        .admin()
        .create(&access_tokens(namespace), &body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["status"]["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// A Channel in team-a, once Ready.
pub async fn channel_in_team_a(broker: &Broker, name: &str) {
    let body = json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": name}, "spec": {}});
    let path = "/apis/messaging.knative.dev/v1/namespaces/team-a/channels";
    let reply = broker.admin().create(path, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    ready(broker, &format!("{path}/{name}")).await;
}

/// A Subscription in team-a, once Ready.
pub async fn subscription_in_team_a(broker: &Broker, name: &str, spec: Value) {
    let body = json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": name}, "spec": spec});
    let path = "/apis/messaging.knative.dev/v1/namespaces/team-a/subscriptions";
    let reply = broker.admin().create(path, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    ready(broker, &format!("{path}/{name}")).await;
}

pub fn channel_ref(name: &str) -> Value {
    json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "name": name})
}

pub fn default_broker_ref() -> Value {
    json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"})
}
