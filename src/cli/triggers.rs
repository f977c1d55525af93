//! `trigger create`: the common Trigger in one line — a type, a source, a
//! CESQL expression (which the server checks before anything is written) and
//! a subscriber URI — waiting until the Trigger is Ready.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::Client;
use super::failure::Failure;
use super::kinds::path_of;
use super::output::text;
use crate::resources::{Trigger, kind_of};

const POLL: Duration = Duration::from_millis(300);
const PATIENCE: Duration = Duration::from_secs(60);

pub struct NewTrigger<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub broker: &'a str,
    pub ty: Option<&'a str>,
    pub source: Option<&'a str>,
    pub cesql: Option<&'a str>,
    pub sink: &'a str,
}

/// The spec: exact attributes as Knative's `filter`, or, with CESQL, as the
/// Subscriptions API's `filters` (all of which must pass; one `exact` filter
/// per attribute).
fn spec_of(trigger: &NewTrigger<'_>) -> Value {
    let attributes: Vec<(&str, &str)> = [("type", trigger.ty), ("source", trigger.source)]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
    let mut spec = json!({"broker": trigger.broker, "subscriber": {"uri": trigger.sink}});
    match trigger.cesql {
        Some(cesql) => {
            let mut filters: Vec<Value> = attributes
                .iter()
                .map(|(name, value)| json!({"exact": {*name: value}}))
                .collect();
            filters.push(json!({"cesql": cesql}));
            spec["filters"] = Value::Array(filters);
        }
        None if !attributes.is_empty() => {
            let attributes: serde_json::Map<String, Value> = attributes
                .iter()
                .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
                .collect();
            spec["filter"] = json!({"attributes": attributes});
        }
        None => {}
    }
    spec
}

pub async fn create(
    client: &Client,
    trigger: NewTrigger<'_>,
    wait: bool,
) -> Result<String, Failure> {
    if let Some(cesql) = trigger.cesql {
        let checked = client
            .send(
                Method::POST,
                "/console/api/cesql",
                Some(&json!({"expression": cesql})),
            )
            .await?;
        if checked["valid"] != true {
            return Err(Failure::Refused(format!(
                "the CESQL expression does not compile at column {}: {}\n  {cesql}\n  {}^",
                text(&checked["column"]),
                text(&checked["error"]),
                " ".repeat(checked["column"].as_u64().unwrap_or(1).saturating_sub(1) as usize)
            )));
        }
    }
    let kind = kind_of::<Trigger>();
    let object = json!({
        "apiVersion": kind.api_version(), "kind": kind.kind,
        "metadata": {"name": trigger.name, "namespace": trigger.namespace},
        "spec": spec_of(&trigger),
    });
    let collection = path_of(kind, Some(trigger.namespace), None);
    client
        .send(Method::POST, &collection, Some(&object))
        .await?;
    let label = format!("triggers/{}", trigger.name);
    println!("{label} created");
    if !wait {
        return Ok(String::new());
    }
    let item = path_of(kind, Some(trigger.namespace), Some(trigger.name));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stored = client.send(Method::GET, &item, None).await?;
        let ready = stored["status"]["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or_default();
        if ready["status"] == "True" {
            return Ok(format!("{label} Ready\n"));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Refused(format!(
                "{label} is not Ready after {PATIENCE:?}: {} {} (it is kept: `meshbroker delete trigger {} -n {}` removes it)",
                text(&ready["reason"]),
                text(&ready["message"]),
                trigger.name,
                trigger.namespace
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger<'a>(ty: Option<&'a str>, cesql: Option<&'a str>) -> NewTrigger<'a> {
        NewTrigger {
            name: "t",
            namespace: "team-a",
            broker: "default",
            ty,
            source: None,
            cesql,
            sink: "http://fn",
        }
    }

    #[test]
    fn each_exact_filter_names_one_attribute() {
        let mut both = trigger(Some("order.created"), Some("true"));
        both.source = Some("erp");
        assert_eq!(
            spec_of(&both)["filters"],
            json!([{"exact": {"type": "order.created"}}, {"exact": {"source": "erp"}}, {"cesql": "true"}])
        );
    }

    #[test]
    fn attributes_alone_are_a_filter_and_with_cesql_the_subscriptions_api_filters() {
        assert_eq!(
            spec_of(&trigger(Some("order.created"), None))["filter"],
            json!({"attributes": {"type": "order.created"}})
        );
        let both = spec_of(&trigger(Some("order.created"), Some("id LIKE 'o-%'")));
        assert_eq!(
            both["filters"],
            json!([{"exact": {"type": "order.created"}}, {"cesql": "id LIKE 'o-%'"}])
        );
        assert!(both.get("filter").is_none());
        let neither = spec_of(&trigger(None, None));
        assert!(neither.get("filter").is_none() && neither.get("filters").is_none());
    }
}
