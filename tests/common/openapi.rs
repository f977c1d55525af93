//! Checks replies against the OpenAPI documents in openapi/: the status code must be
//! documented for the route and method, and a JSON body must match its schema.

use std::sync::LazyLock;

use serde_json::Value;

use super::Reply;

pub struct Spec {
    name: &'static str,
    doc: Value,
}

fn load(name: &'static str) -> Spec {
    let path = format!("{}/openapi/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    Spec { name, doc }
}

static OSB: LazyLock<Spec> = LazyLock::new(|| load("osb.yaml"));
static RESOURCES: LazyLock<Spec> = LazyLock::new(|| load("resources.yaml"));
static EVENTS: LazyLock<Spec> = LazyLock::new(|| load("events.yaml"));

pub fn osb() -> &'static Spec {
    &OSB
}

pub fn resources() -> &'static Spec {
    &RESOURCES
}

pub fn events() -> &'static Spec {
    &EVENTS
}

/// The events listener's route template for a concrete path.
pub fn event_template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] => "/healthz".into(),
        ["channels", _, _] => "/channels/{namespace}/{channel}".into(),
        [_, "events"] => "/{application}/events".into(),
        [_, "v2", "events"] => "/{application}/v2/events".into(),
        [_, "v1", "events"] => "/{application}/v1/events".into(),
        [_, _] => "/{namespace}/{broker}".into(),
        _ => path.to_string(),
    }
}

/// The resource API's route template for a concrete path.
pub fn resource_template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1"] => "/api/v1".into(),
        ["apis", _] => "/apis/{group}".into(),
        ["apis", _, _] => "/apis/{group}/{version}".into(),
        ["api", "v1", _] => "/api/v1/namespaces".into(),
        ["api", "v1", _, _] => "/api/v1/namespaces/{name}".into(),
        ["apis", _, _, "namespaces", _, _] => {
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}".into()
        }
        ["apis", _, _, "namespaces", _, _, _] => {
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}".into()
        }
        ["apis", _, _, "namespaces", _, _, _, "tail"] => {
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}/tail".into()
        }
        ["apis", _, _, _] => "/apis/{group}/{version}/{plural}".into(),
        ["apis", _, _, _, _] => "/apis/{group}/{version}/{plural}/{name}".into(),
        _ => path.to_string(),
    }
}

impl Spec {
    /// Follows a local `$ref` (`#/components/...`) to what it names.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference.trim_start_matches('#');
            node = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{}: dangling $ref {reference}", self.name));
        }
        node
    }

    pub fn check(&self, method: &str, template: &str, reply: &Reply) {
        let item = self
            .doc
            .get("paths")
            .and_then(|p| p.get(template))
            .map(|item| self.resolve(item))
            .unwrap_or_else(|| panic!("{}: path {template} is not documented", self.name));
        let operation = item
            .get(method)
            .unwrap_or_else(|| panic!("{}: {method} {template} is not documented", self.name));
        let responses = &operation["responses"];
        let status = reply.status.to_string();
        let response = responses
            .get(&status)
            .or_else(|| responses.get("default"))
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| {
                panic!(
                    "{}: {method} {template} answered {status}, which is not documented: {}",
                    self.name, reply.text
                )
            });
        let Some(schema) = response.pointer("/content/application~1json/schema") else {
            return;
        };
        if reply.body.is_null() {
            return;
        }
        let mut root = match self.resolve(schema) {
            Value::Object(fields) => Value::Object(fields.clone()),
            other => other.clone(),
        };
        if let Some(fields) = root.as_object_mut() {
            fields.insert("components".into(), self.doc["components"].clone());
        }
        let validator = jsonschema::draft202012::new(&root).unwrap_or_else(|e| {
            panic!(
                "{}: the schema for {method} {template} {status} is invalid: {e}",
                self.name
            )
        });
        if let Some(error) = validator.iter_errors(&reply.body).next() {
            panic!(
                "{}: {method} {template} {status} does not match its schema at {}: {error}\n{}",
                self.name,
                error.instance_path(),
                reply.text
            );
        }
    }
}
