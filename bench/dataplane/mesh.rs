//! Setting up the broker under test over its own APIs, as a user would.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::load::EventRequest;
use super::processes::Meshbroker;

pub const SERVICE: &str = "bench-service";

/// A broker with the Application `bench` provisioned into `team-a` and one
/// Trigger there for `bench.event` to `sink_url`, Ready: its ingress URL and
/// the Application's request (an id of its own per event when `unique`).
pub async fn bench_mesh(
    broker: &Meshbroker,
    sink_url: &str,
    unique: bool,
) -> (String, EventRequest) {
    let api = Api::new(broker);
    let token = api.register().await;
    api.provision("team-a").await;
    api.trigger("team-a", "match", "bench.event", sink_url)
        .await;
    api.wait_ready("team-a", 1).await;
    let request = if unique {
        EventRequest::unique("bench.event", Some(&token))
    } else {
        EventRequest::new("bench.event", Some(&token))
    };
    (format!("{}/bench/events", broker.events), request)
}

pub struct Api<'a> {
    pub broker: &'a Meshbroker,
    pub http: reqwest::Client,
}

impl<'a> Api<'a> {
    pub fn new(broker: &'a Meshbroker) -> Self {
        Self {
            broker,
            http: client(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.broker.control))
            .bearer_auth(&self.broker.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }

    /// The broker's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.broker.control))
            .send()
            .await
            .expect("metrics");
        response.text().await.expect("metrics text")
    }

    pub async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await.1
    }

    /// The Application `bench` with one events service; returns its credential.
    pub async fn register(&self) -> String {
        let application = json!({
            "apiVersion": "applicationconnector.kyma-project.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "bench"},
            "spec": {"services": [{"id": SERVICE, "displayName": "Bench", "entries": [{"type": "Events"}]}]}
        });
        let answer = self
            .create(
                "/apis/applicationconnector.kyma-project.io/v1alpha1/applications",
                application,
            )
            .await;
        answer["status"]["credential"]["token"]
            .as_str()
            .expect("credential")
            .to_string()
    }

    /// A namespace with the Application mapped and provisioned into it.
    pub async fn provision(&self, namespace: &str) {
        self.create(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
        .await;
        self.create(
            &format!("/apis/applicationconnector.kyma-project.io/v1alpha1/namespaces/{namespace}/applicationmappings"),
            json!({"apiVersion": "applicationconnector.kyma-project.io/v1alpha1", "kind": "ApplicationMapping", "metadata": {"name": "bench"}}),
        )
        .await;
        let body = json!({
            "service_id": SERVICE, "plan_id": format!("{SERVICE}-plan-default"),
            "organization_guid": "bench", "space_guid": namespace,
            "context": {"platform": "kubernetes", "namespace": namespace}
        });
        let response = self
            .http
            .put(format!(
                "{}/v2/service_instances/bench-{namespace}",
                self.broker.control
            ))
            .basic_auth("meshbroker", Some(&self.broker.osb_password))
            .header("X-Broker-API-Version", "2.17")
            .json(&body)
            .send()
            .await
            .expect("provision");
        assert_eq!(response.status().as_u16(), 201, "provisioning {namespace}");
    }

    pub async fn trigger(&self, namespace: &str, name: &str, ty: &str, subscriber: &str) {
        let body = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": name},
            "spec": {"broker": "default", "filter": {"attributes": {"type": ty}}, "subscriber": {"uri": subscriber},
                     "delivery": {"retry": 2, "backoffDelay": "PT0.2S"}}
        });
        self.create(
            &format!("/apis/eventing.knative.dev/v1/namespaces/{namespace}/triggers"),
            body,
        )
        .await;
    }

    /// Triggers `other-{i}` for `i` in `from..to` (each filtering its own type, to
    /// `subscriber`), created 16 at a time; then waits until `to` Triggers of the
    /// namespace are Ready. Returns how long creating took and how long until all
    /// were Ready (both from the start).
    pub async fn add_triggers(
        &self,
        namespace: &str,
        from: usize,
        to: usize,
        subscriber: &str,
    ) -> (Duration, Duration) {
        let started = Instant::now();
        let mut creating = tokio::task::JoinSet::new();
        for i in from..to {
            let request = self
                .http
                .post(format!(
                    "{}/apis/eventing.knative.dev/v1/namespaces/{namespace}/triggers",
                    self.broker.control
                ))
                .bearer_auth(&self.broker.admin_token)
                .json(&json!({
                    "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": format!("other-{i}")},
                    "spec": {"broker": "default", "filter": {"attributes": {"type": format!("bench.other.{i}")}}, "subscriber": {"uri": subscriber}}
                }));
            creating.spawn(request.send());
            while creating.len() >= 16 {
                creating.join_next().await;
            }
        }
        while creating.join_next().await.is_some() {}
        let created = started.elapsed();
        self.wait_ready(namespace, to).await;
        (created, started.elapsed())
    }

    /// Waits until `count` Triggers of the namespace are Ready (routed).
    pub async fn wait_ready(&self, namespace: &str, count: usize) {
        let started = Instant::now();
        loop {
            let list = self
                .get(&format!(
                    "/apis/eventing.knative.dev/v1/namespaces/{namespace}/triggers"
                ))
                .await;
            let ready = list["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter(|t| {
                            t["status"]["conditions"].as_array().is_some_and(|c| {
                                c.iter()
                                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                        })
                        .count()
                })
                .unwrap_or(0);
            if ready >= count {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1800),
                "Triggers did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Waits until none of the sinks has counted an event for a second: what a
/// saturated window left queued in a broker (on disk in durable mode) has been
/// delivered, so it neither takes the next window's CPU nor counts as its
/// deliveries. Returns how long that took; gives up after two minutes.
pub async fn settle(sinks: &[u16]) -> Duration {
    const QUIET: Duration = Duration::from_secs(1);
    let started = Instant::now();
    let mut last = Vec::new();
    let mut unchanged_since = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let mut counts = Vec::with_capacity(sinks.len());
        for port in sinks {
            counts.push(sink_stats(*port).await["count"].as_u64().unwrap_or(0));
        }
        if counts != last {
            last = counts;
            unchanged_since = Instant::now();
        } else if unchanged_since.elapsed() >= QUIET {
            return started.elapsed().saturating_sub(QUIET);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  the sinks were still counting after two minutes");
    started.elapsed()
}

pub async fn sink_stats(port: u16) -> Value {
    reqwest::get(format!("http://127.0.0.1:{port}/_stats"))
        .await
        .expect("sink stats")
        .json()
        .await
        .expect("JSON")
}

/// reqwest takes its TLS crypto from rustls' process default (ring here),
/// even for plain HTTP.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn sink_post(port: u16, path: &str, body: &str) {
    client()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .body(body.to_string())
        .send()
        .await
        .expect("sink control");
}
