//! The black-box test harness: starts the real `meshbroker` binary on ephemeral
//! loopback ports with a temporary data directory, and speaks HTTP to it. Every
//! wait has a deadline. OSB replies are checked against openapi/osb.yaml and
//! resource API replies against openapi/resources.yaml as they arrive.

#![allow(dead_code)] // Each test target uses a different part of the harness.

pub mod fixtures;
pub mod kube;
pub mod mesh;
pub mod nats;
pub mod openapi;
pub mod sink;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

/// An HTTP client for the tests. reqwest's TLS (for the Connector's tests)
/// takes its crypto from rustls' process default, which is ring here.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .expect("HTTP client")
}

/// A test client that also trusts `pem` (a server certificate of the test's own).
pub fn http_client_trusting(pem: &[u8]) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certificate = reqwest::Certificate::from_pem(pem).expect("a PEM certificate");
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .add_root_certificate(certificate)
        .build()
        .expect("HTTP client")
}

/// The certificate a broker's control listener is started with, if TLS.
fn control_certificate(args: &[String]) -> Option<Vec<u8>> {
    let at = args.iter().position(|a| a == "--control-tls-cert")?;
    let path = args.get(at + 1)?;
    Some(std::fs::read(path).expect("the control listener's certificate"))
}

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Where the broker under test keeps its resources; each test target names its
/// own as `crate::BACKEND`, so the same test modules run on both.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store in the temporary data directory.
    Embedded,
    /// A fresh kube-apiserver per broker (`--store kube`), see `kube::Cluster`.
    Kube,
}

pub struct Broker {
    child: Option<Child>,
    /// Dropped after the process is killed (fields drop after `Drop::drop`).
    cluster: Option<kube::Cluster>,
    /// With `MESHBROKER_DELIVERY=jetstream`: this broker's own nats-server.
    nats: Option<nats::NatsServer>,
    /// `--store kube` on a cluster someone else owns (a replica of several).
    kubeconfig: Option<PathBuf>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    pub control: String,
    pub events: String,
    pub admin_token: String,
    pub osb_password: String,
    pub http: reqwest::Client,
}

impl Broker {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts with extra `serve` flags (e.g. `--sync-wait 1s`).
    pub async fn start_with(args: &[&str]) -> Self {
        let cluster = match crate::BACKEND {
            Backend::Embedded => None,
            Backend::Kube => Some(kube::Cluster::start().await),
        };
        Self::start_on(cluster, args).await
    }

    /// Starts with `--store kube` on a cluster the test set up.
    pub async fn start_in(cluster: kube::Cluster, args: &[&str]) -> Self {
        Self::start_on(Some(cluster), args).await
    }

    async fn start_on(cluster: Option<kube::Cluster>, args: &[&str]) -> Self {
        let nats = nats::wanted().then(nats::NatsServer::start);
        let args = args.iter().map(|a| a.to_string()).collect();
        Self::launched(cluster, nats, None, args, ("", "")).await
    }

    /// One of several replicas on `cluster`, which the caller keeps: they share
    /// the credentials given here (each would generate its own otherwise).
    pub async fn replica_of(
        cluster: &kube::Cluster,
        admin_token: &str,
        osb_password: &str,
        args: &[&str],
    ) -> Self {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend([
            "--admin-token".into(),
            admin_token.into(),
            "--osb-password".into(),
            osb_password.into(),
        ]);
        let kubeconfig = Some(cluster.meshbroker_kubeconfig());
        Self::launched(None, None, kubeconfig, args, (admin_token, osb_password)).await
    }

    /// Starts the process; `credentials` (admin token, OSB password) are read
    /// from the data directory where empty.
    async fn launched(
        cluster: Option<kube::Cluster>,
        nats: Option<nats::NatsServer>,
        kubeconfig: Option<PathBuf>,
        args: Vec<String>,
        credentials: (&str, &str),
    ) -> Self {
        let mut broker = Self {
            child: None,
            cluster,
            nats,
            kubeconfig,
            dir: tempfile::tempdir().expect("temporary data directory"),
            control: String::new(),
            events: String::new(),
            http: match control_certificate(&args) {
                Some(pem) => http_client_trusting(&pem),
                None => http_client(),
            },
            args,
            admin_token: credentials.0.into(),
            osb_password: credentials.1.into(),
        };
        broker.launch().await;
        broker
    }

    /// The API server of a broker on `--store kube`.
    pub fn cluster(&self) -> &kube::Cluster {
        self.cluster.as_ref().expect("a broker on a cluster")
    }

    /// This broker's nats-server (JetStream delivery).
    pub fn nats(&self) -> Option<&nats::NatsServer> {
        self.nats.as_ref()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("meshbroker.log")
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn launch(&mut self) {
        let endpoints = self.dir.path().join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_meshbroker"));
        command.arg("serve");
        let kubeconfig = (self
            .cluster
            .as_ref()
            .map(kube::Cluster::meshbroker_kubeconfig))
        .or_else(|| self.kubeconfig.clone());
        if let Some(kubeconfig) = kubeconfig {
            command
                .args(["--store", "kube"])
                .env("KUBECONFIG", kubeconfig);
        }
        if let Some(nats) = &self.nats {
            command.env("MESHBROKER_NATS_URL", &nats.url);
        }
        let child = command
            .arg("--data-dir")
            .arg(self.dir.path())
            .args([
                "--control-addr",
                "127.0.0.1:0",
                "--events-addr",
                "127.0.0.1:0",
            ])
            .args(&self.args)
            .env("RUST_LOG", "info,meshbroker=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("meshbroker starts");
        self.child = Some(child);
        let started = Instant::now();
        let written = loop {
            if let Ok(text) = std::fs::read_to_string(&endpoints)
                && let Ok(value) = serde_json::from_str::<Value>(&text)
            {
                break value;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "meshbroker exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < DEADLINE,
                "meshbroker did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.control = written["control"]
            .as_str()
            .expect("control URL")
            .to_string();
        self.events = written["events"].as_str().expect("events URL").to_string();
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.path().join(name))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        if self.admin_token.is_empty() {
            self.admin_token = read("admin-token");
        }
        if self.osb_password.is_empty() {
            self.osb_password = read("osb-password");
        }
        let ready = format!("{}/readyz", self.control);
        eventually("the broker to report ready", async || {
            let response = self.http.get(&ready).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
    }

    /// Kills the process without warning (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops with SIGTERM and waits for a clean exit; returns whether it exited 0.
    pub async fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("meshbroker did not stop on SIGTERM:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the process again on the same data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    /// The Prometheus text of `/metrics` on the control listener.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.control))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn osb(&self) -> Osb<'_> {
        Osb {
            broker: self,
            prefix: String::new(),
        }
    }

    /// The OSB API under `/{namespace}/v2`.
    pub fn osb_in(&self, namespace: &str) -> Osb<'_> {
        Osb {
            broker: self,
            prefix: format!("/{namespace}"),
        }
    }

    pub fn admin(&self) -> Resources<'_> {
        Resources {
            broker: self,
            token: Some(self.admin_token.clone()),
        }
    }

    pub fn with_token(&self, token: &str) -> Resources<'_> {
        Resources {
            broker: self,
            token: Some(token.to_string()),
        }
    }

    pub fn anonymous(&self) -> Resources<'_> {
        Resources {
            broker: self,
            token: None,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it yields a value; fails the test at the deadline.
pub async fn eventually<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    within(DEADLINE, what, check).await
}

/// Polls `check` until it yields a value; fails the test after `deadline`
/// (for what is awaited longer than the harness deadline on purpose).
pub async fn within<T>(
    deadline: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A reply: status, headers and the body parsed as JSON (Null when it is not).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `description` of an OSB error, or the `message` of a Kubernetes Status.
    pub fn message(&self) -> &str {
        self.body["description"]
            .as_str()
            .or_else(|| self.body["message"].as_str())
            .unwrap_or_default()
    }
}

/// The OSB API as a platform calls it: basic auth, API version 2.17.
pub struct Osb<'a> {
    pub broker: &'a Broker,
    prefix: String,
}

impl Osb<'_> {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.broker.control, self.prefix, path)
    }

    /// A request with credentials and version header, for tests that vary them.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.broker
            .http
            .request(method, self.url(path))
            .basic_auth("meshbroker", Some(&self.broker.osb_password))
            .header("X-Broker-API-Version", "2.17")
    }

    /// Sends, then checks the reply against the OSB OpenAPI document.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        template: &str,
    ) -> Reply {
        let reply = Reply::from(request.send().await.expect("OSB request")).await;
        let template = format!(
            "{}{template}",
            if self.prefix.is_empty() {
                ""
            } else {
                "/{namespace}"
            }
        );
        openapi::osb().check(method, &template, &reply);
        reply
    }

    pub async fn catalog(&self) -> Reply {
        self.send(
            self.request(Method::GET, "/v2/catalog"),
            "get",
            "/v2/catalog",
        )
        .await
    }

    pub async fn provision(&self, instance: &str, body: &Value, accepts_incomplete: bool) -> Reply {
        let path = format!(
            "/v2/service_instances/{instance}{}",
            async_query(accepts_incomplete, '?')
        );
        self.send(
            self.request(Method::PUT, &path).json(body),
            "put",
            "/v2/service_instances/{instance_id}",
        )
        .await
    }

    pub async fn update(&self, instance: &str, body: &Value, accepts_incomplete: bool) -> Reply {
        let path = format!(
            "/v2/service_instances/{instance}{}",
            async_query(accepts_incomplete, '?')
        );
        self.send(
            self.request(Method::PATCH, &path).json(body),
            "patch",
            "/v2/service_instances/{instance_id}",
        )
        .await
    }

    pub async fn deprovision(
        &self,
        instance: &str,
        service: &str,
        plan: &str,
        accepts_incomplete: bool,
    ) -> Reply {
        let path = format!(
            "/v2/service_instances/{instance}?service_id={service}&plan_id={plan}{}",
            async_query(accepts_incomplete, '&')
        );
        self.send(
            self.request(Method::DELETE, &path),
            "delete",
            "/v2/service_instances/{instance_id}",
        )
        .await
    }

    pub async fn fetch(&self, instance: &str) -> Reply {
        let path = format!("/v2/service_instances/{instance}");
        self.send(
            self.request(Method::GET, &path),
            "get",
            "/v2/service_instances/{instance_id}",
        )
        .await
    }

    pub async fn last_operation(&self, instance: &str, operation: Option<&str>) -> Reply {
        let query = operation
            .map(|o| format!("?operation={o}"))
            .unwrap_or_default();
        let path = format!("/v2/service_instances/{instance}/last_operation{query}");
        self.send(
            self.request(Method::GET, &path),
            "get",
            "/v2/service_instances/{instance_id}/last_operation",
        )
        .await
    }

    pub async fn bind(&self, instance: &str, binding: &str, body: &Value) -> Reply {
        let path = format!("/v2/service_instances/{instance}/service_bindings/{binding}");
        let template = "/v2/service_instances/{instance_id}/service_bindings/{binding_id}";
        self.send(self.request(Method::PUT, &path).json(body), "put", template)
            .await
    }

    pub async fn unbind(&self, instance: &str, binding: &str, service: &str, plan: &str) -> Reply {
        let path = format!(
            "/v2/service_instances/{instance}/service_bindings/{binding}?service_id={service}&plan_id={plan}"
        );
        let template = "/v2/service_instances/{instance_id}/service_bindings/{binding_id}";
        self.send(self.request(Method::DELETE, &path), "delete", template)
            .await
    }

    /// Polls last_operation until the operation leaves `in progress`; on timeout,
    /// fails with its last description and what the broker logged.
    pub async fn finished(&self, instance: &str, operation: &str) -> Reply {
        let started = Instant::now();
        loop {
            let reply = self.last_operation(instance, Some(operation)).await;
            if reply.status != 200 || reply.body["state"] != "in progress" {
                return reply;
            }
            if started.elapsed() > DEADLINE {
                let log = self.broker.log();
                let tail: Vec<&str> = log.lines().rev().take(80).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "operation {operation} of {instance} did not finish: {}\n--- broker log (tail) ---\n{}",
                    reply.text,
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Provisions asynchronously and waits for success.
    pub async fn provision_and_wait(&self, instance: &str, body: &Value) {
        let reply = self.provision(instance, body, true).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let operation = reply.body["operation"]
            .as_str()
            .expect("operation")
            .to_string();
        let done = self.finished(instance, &operation).await;
        assert_eq!(
            done.body["state"],
            "succeeded",
            "{}\n{}",
            done.text,
            self.broker.log()
        );
    }

    /// Deprovisions asynchronously and waits until the instance is gone.
    pub async fn deprovision_and_wait(&self, instance: &str, service: &str, plan: &str) {
        let reply = self.deprovision(instance, service, plan, true).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let operation = reply.body["operation"]
            .as_str()
            .expect("operation")
            .to_string();
        let done = self.finished(instance, &operation).await;
        // Succeeded, or Gone when the broker already forgot it (a tiny retention).
        assert!(
            (done.status == 200 && done.body["state"] == "succeeded") || done.status == 410,
            "a finished deprovision: {}",
            done.text
        );
    }
}

fn async_query(accepts_incomplete: bool, separator: char) -> String {
    if accepts_incomplete {
        format!("{separator}accepts_incomplete=true")
    } else {
        String::new()
    }
}

/// The resource API with a bearer token (or none).
pub struct Resources<'a> {
    broker: &'a Broker,
    token: Option<String>,
}

impl Resources<'_> {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .broker
            .http
            .request(method, format!("{}{path}", self.broker.control));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder, method: &str, path: &str) -> Reply {
        let reply = Reply::from(request.send().await.expect("resource API request")).await;
        openapi::resources().check(method, &openapi::resource_template(path), &reply);
        reply
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path), "get", path)
            .await
    }

    pub async fn create(&self, collection: &str, body: &Value) -> Reply {
        self.send(
            self.request(Method::POST, collection).json(body),
            "post",
            collection,
        )
        .await
    }

    pub async fn create_yaml(&self, collection: &str, yaml: &str) -> Reply {
        let request = self
            .request(Method::POST, collection)
            .header("content-type", "application/yaml")
            .body(yaml.to_string());
        self.send(request, "post", collection).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::PUT, path).json(body), "put", path)
            .await
    }

    /// A PATCH with `content_type` (a merge patch, JSON Patch, …).
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Reply {
        let request = self
            .request(Method::PATCH, path)
            .header("content-type", content_type)
            .body(body.to_string());
        self.send(request, "patch", path).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path), "delete", path)
            .await
    }

    /// A DELETE with a body (a `DeleteOptions`, or something that is not one).
    pub async fn delete_with_body(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let request = self
            .request(Method::DELETE, path)
            .header("content-type", content_type)
            .body(body);
        self.send(request, "delete", path).await
    }

    /// Sends a raw body with a content type, for bad-input tests.
    pub async fn post_raw(&self, collection: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let request = self
            .request(Method::POST, collection)
            .header("content-type", content_type)
            .body(body);
        self.send(request, "post", collection).await
    }

    /// The object at `path`, or None when it does not exist.
    pub async fn find(&self, path: &str) -> Option<Value> {
        let reply = self.get(path).await;
        match reply.status {
            200 => Some(reply.body),
            404 => None,
            other => panic!("GET {path} answered {other}: {}", reply.text),
        }
    }
}
