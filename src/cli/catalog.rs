//! svcat's verbs over the OSB API: the classes a namespace may provision,
//! provisioning and deprovisioning with the operation's steps shown as they
//! pass, and the instances (read from the resource API).

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::args::Format;
use super::client::{Client, read, refused};
use super::failure::Failure;
use super::output::{age, columns, serialized, text};

/// How often a waiting command asks for the operation's state.
const POLL: Duration = Duration::from_millis(300);
/// How long a waiting command waits (an operation retries its steps for a while).
const PATIENCE: Duration = Duration::from_secs(600);
const INSTANCES: &str = "/apis/meshbroker.io/v1alpha1/serviceinstances";
/// What stays as it is in a path segment or a query value (RFC 3986's
/// unreserved characters).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn catalog_path(namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("/{namespace}/v2/catalog"),
        None => "/v2/catalog".into(),
    }
}

async fn catalog(client: &Client, namespace: Option<&str>) -> Result<Vec<Value>, Failure> {
    let catalog = client
        .send(Method::GET, &catalog_path(namespace), None)
        .await?;
    Ok(catalog["services"].as_array().cloned().unwrap_or_default())
}

pub async fn classes(
    client: &Client,
    namespace: Option<&str>,
    format: Format,
) -> Result<String, Failure> {
    let services = catalog(client, namespace).await?;
    if let Some(serialized) = serialized(&Value::Array(services.clone()), format) {
        return serialized;
    }
    if services.is_empty() {
        return Ok("No classes found.\n".into());
    }
    let mut rows = vec![
        vec!["NAME", "ID", "PLANS", "DESCRIPTION"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    for service in &services {
        let plans: Vec<String> = service["plans"]
            .as_array()
            .map(|plans| plans.iter().map(|p| text(&p["name"])).collect())
            .unwrap_or_default();
        rows.push(vec![
            text(&service["name"]),
            text(&service["id"]),
            plans.join(","),
            text(&service["description"]),
        ]);
    }
    Ok(columns(&rows))
}

/// The class named (by name or id) and its plan (by name or id; the only one
/// when none is named).
fn choose(
    services: &[Value],
    class: &str,
    plan: Option<&str>,
) -> Result<(String, String), Failure> {
    let service = services
        .iter()
        .find(|s| s["name"] == class || s["id"] == class)
        .ok_or_else(|| {
            let known: Vec<String> = services.iter().map(|s| text(&s["name"])).collect();
            Failure::Usage(format!(
                "no class {class:?} here; the classes: {}",
                known.join(", ")
            ))
        })?;
    let plans = service["plans"].as_array().cloned().unwrap_or_default();
    let chosen = match plan {
        Some(plan) => plans.iter().find(|p| p["name"] == plan || p["id"] == plan),
        None if plans.len() == 1 => plans.first(),
        None => None,
    };
    let chosen = chosen.ok_or_else(|| {
        let known: Vec<String> = plans.iter().map(|p| text(&p["name"])).collect();
        Failure::Usage(format!(
            "choose a plan of {class} with --plan: {}",
            known.join(", ")
        ))
    })?;
    Ok((text(&service["id"]), text(&chosen["id"])))
}

/// `key=value` pairs (a value that parses as JSON is taken as JSON), or one
/// JSON object.
pub fn parameters(pairs: &[String], json: Option<&str>) -> Result<Option<Value>, Failure> {
    if let Some(json) = json {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Failure::Usage(format!("--params-json is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(Failure::Usage("--params-json must be a JSON object".into()));
        }
        return Ok(Some(value));
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut parameters = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--param {pair:?} is not KEY=VALUE")))?;
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        parameters.insert(key.to_string(), value);
    }
    Ok(Some(Value::Object(parameters)))
}

pub struct ProvisionRequest<'a> {
    pub instance: &'a str,
    pub class: &'a str,
    pub plan: Option<&'a str>,
    pub namespace: &'a str,
    pub parameters: Option<Value>,
    pub wait: bool,
}

pub async fn provision(client: &Client, request: ProvisionRequest<'_>) -> Result<String, Failure> {
    let services = catalog(client, Some(request.namespace)).await?;
    let (service_id, plan_id) = choose(&services, request.class, request.plan)?;
    let mut body = json!({
        "service_id": service_id,
        "plan_id": plan_id,
        "organization_guid": "meshbroker",
        "space_guid": request.namespace,
        "context": {"platform": "kubernetes", "namespace": request.namespace},
    });
    if let Some(parameters) = request.parameters {
        body["parameters"] = parameters;
    }
    let path = format!("{}?accepts_incomplete=true", instance_at(request.instance)?);
    let response = client
        .request(Method::PUT, &path)
        .json(&body)
        .send()
        .await
        .map_err(|e| Failure::unreachable(&client.base, &e))?;
    let (status, answer) = read(response).await?;
    refused(status, &answer)?;
    let label = format!("serviceinstances/{}", request.instance);
    match (status.as_u16(), answer["operation"].as_str()) {
        (202, Some(operation)) if request.wait => {
            follow(client, request.instance, operation, "provision").await?;
            Ok(format!("{label} provisioned\n"))
        }
        (202, Some(operation)) => Ok(format!(
            "{label} accepted (operation {operation}); follow it with `meshbroker instances`\n"
        )),
        (200, _) => Ok(format!("{label} unchanged (already provisioned)\n")),
        _ => Ok(format!("{label} provisioned\n")),
    }
}

pub async fn deprovision(client: &Client, instance: &str, wait: bool) -> Result<String, Failure> {
    let at = instance_at(instance)?;
    let fetched = client.send(Method::GET, &at, None).await?;
    let path = format!(
        "{at}?service_id={}&plan_id={}&accepts_incomplete=true",
        encoded(&text(&fetched["service_id"])),
        encoded(&text(&fetched["plan_id"]))
    );
    let response = client
        .request(Method::DELETE, &path)
        .send()
        .await
        .map_err(|e| Failure::unreachable(&client.base, &e))?;
    let (status, answer) = read(response).await?;
    refused(status, &answer)?;
    let label = format!("serviceinstances/{instance}");
    match (status.as_u16(), answer["operation"].as_str()) {
        (202, Some(operation)) if wait => {
            follow(client, instance, operation, "deprovision").await?;
            Ok(format!("{label} deprovisioned\n"))
        }
        (202, Some(operation)) => Ok(format!("{label} deprovisioning (operation {operation})\n")),
        _ => Ok(format!("{label} deprovisioned\n")),
    }
}

/// Polls last_operation, printing each new description, until it ends.
async fn follow(
    client: &Client,
    instance: &str,
    operation: &str,
    what: &str,
) -> Result<(), Failure> {
    let path = format!(
        "{}/last_operation?operation={}",
        instance_at(instance)?,
        encoded(operation)
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut shown = String::new();
    loop {
        let response = client
            .request(Method::GET, &path)
            .send()
            .await
            .map_err(|e| Failure::unreachable(&client.base, &e))?;
        let (status, answer) = read(response).await?;
        // A deprovisioned instance is gone: that is how OSB says it ended well.
        if status == reqwest::StatusCode::GONE && what == "deprovision" {
            return Ok(());
        }
        refused(status, &answer)?;
        let description = text(&answer["description"]);
        if description != shown {
            println!("{what} {instance}: {description}");
            shown = description;
        }
        match answer["state"].as_str() {
            Some("succeeded") => return Ok(()),
            Some("failed") => {
                return Err(Failure::Refused(format!(
                    "{what} {instance} failed: {shown}"
                )));
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Refused(format!(
                "{what} {instance} still in progress after {PATIENCE:?}: {shown}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

pub async fn instances(
    client: &Client,
    namespace: Option<&str>,
    format: Format,
) -> Result<String, Failure> {
    let list = client.send(Method::GET, INSTANCES, None).await?;
    let items: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"]["deleted"] != true)
        .filter(|i| namespace.is_none_or(|ns| i["spec"]["namespace"] == ns))
        .cloned()
        .collect();
    if let Some(serialized) = serialized(&json!({"items": items}), format) {
        return serialized;
    }
    if items.is_empty() {
        return Ok("No instances found.\n".into());
    }
    let now = jiff::Timestamp::now();
    let mut rows = vec![
        ["NAME", "NAMESPACE", "APPLICATION", "LAST OPERATION", "AGE"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    for item in &items {
        let last = item["status"]["operations"]
            .as_array()
            .and_then(|all| all.last())
            .map(|op| format!("{} {}", text(&op["kind"]), text(&op["state"])))
            .unwrap_or_default();
        rows.push(vec![
            text(&item["metadata"]["name"]),
            text(&item["spec"]["namespace"]),
            text(&item["spec"]["application"]),
            last,
            age(&item["metadata"]["creationTimestamp"], now),
        ]);
    }
    Ok(columns(&rows))
}

/// An instance's OSB path. Instance ids are the platform's (any text), so the
/// id is encoded, and one that would name another path is refused.
fn instance_at(instance: &str) -> Result<String, Failure> {
    if matches!(instance, "" | "." | "..") {
        return Err(Failure::Usage(format!(
            "{instance:?} is not an instance id"
        )));
    }
    Ok(format!("/v2/service_instances/{}", encoded(instance)))
}

fn encoded(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_take_json_values_and_strings() {
        let pairs = [
            "a=1".to_string(),
            "b=x y".to_string(),
            "c={\"d\":true}".to_string(),
        ];
        assert_eq!(
            parameters(&pairs, None).ok().flatten(),
            Some(json!({"a": 1, "b": "x y", "c": {"d": true}}))
        );
        assert!(matches!(
            parameters(&["novalue".into()], None),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            parameters(&[], Some("[1]")),
            Err(Failure::Usage(_))
        ));
        assert_eq!(parameters(&[], None).ok().flatten(), None);
    }

    #[test]
    fn a_class_is_chosen_by_name_or_id_and_its_only_plan_by_default() {
        let services = vec![
            json!({"name": "orders", "id": "s1", "plans": [{"name": "default", "id": "p1"}]}),
            json!({"name": "two", "id": "s2", "plans": [{"name": "a", "id": "pa"}, {"name": "b", "id": "pb"}]}),
        ];
        assert_eq!(
            choose(&services, "orders", None).ok(),
            Some(("s1".into(), "p1".into()))
        );
        assert_eq!(
            choose(&services, "s2", Some("b")).ok(),
            Some(("s2".into(), "pb".into()))
        );
        assert!(
            matches!(choose(&services, "two", None), Err(Failure::Usage(m)) if m.contains("a, b"))
        );
        assert!(
            matches!(choose(&services, "nope", None), Err(Failure::Usage(m)) if m.contains("orders, two"))
        );
    }
}
