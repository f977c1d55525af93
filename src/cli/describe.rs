//! `describe`: one object for people, kubectl's way — its identity, labels,
//! its spec as YAML, its conditions as a table, and for a Trigger what its
//! filter lets through and how it delivers, spelled out.

use serde_json::Value;

use super::failure::Failure;
use super::output::{age, columns, text};

pub fn describe(object: &Value) -> Result<String, Failure> {
    let metadata = &object["metadata"];
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        if !value.is_empty() {
            out.push_str(&format!("{:<13}{value}\n", format!("{label}:")));
        }
    };
    line("Name", text(&metadata["name"]));
    line("Namespace", text(&metadata["namespace"]));
    line(
        "Kind",
        format!(
            "{} ({})",
            text(&object["kind"]),
            text(&object["apiVersion"])
        ),
    );
    line("Labels", pairs(&metadata["labels"]));
    line("Annotations", pairs(&metadata["annotations"]));
    line("Created", text(&metadata["creationTimestamp"]));
    if object["kind"] == "Trigger" {
        let spec = &object["spec"];
        line("Broker", text(&spec["broker"]));
        line("Filter", filter_text(spec));
        line("Subscriber", destination(&spec["subscriber"]));
        line("Delivery", delivery_text(&spec["delivery"]));
        line("Subscriber URI", text(&object["status"]["subscriberUri"]));
    }
    if let Some(spec) = object.get("spec").filter(|s| !s.is_null()) {
        let yaml = serde_saphyr::to_string(spec).map_err(|e| Failure::Refused(e.to_string()))?;
        out.push_str("Spec:\n");
        for spec_line in yaml.lines() {
            out.push_str(&format!("  {spec_line}\n"));
        }
    }
    out.push_str(&conditions(&object["status"]["conditions"]));
    Ok(out)
}

fn pairs(map: &Value) -> String {
    map.as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn destination(destination: &Value) -> String {
    let reference = &destination["ref"];
    let uri = text(&destination["uri"]);
    if reference.is_null() {
        return uri;
    }
    let named = format!(
        "{} {}{}",
        text(&reference["kind"]),
        reference["namespace"]
            .as_str()
            .map(|ns| format!("{ns}/"))
            .unwrap_or_default(),
        text(&reference["name"])
    );
    match uri.is_empty() {
        true => named,
        false => format!("{named} {uri}"),
    }
}

/// What passes, in words: every event, exact attributes, or the Subscriptions
/// API's filters (all of which must pass) in their own syntax.
fn filter_text(spec: &Value) -> String {
    if let Some(filters) = spec["filters"].as_array().filter(|f| !f.is_empty()) {
        let all: Vec<String> = filters.iter().map(dialect).collect();
        return all.join("\n             AND ");
    }
    match spec["filter"]["attributes"].as_object() {
        Some(attributes) if !attributes.is_empty() => attributes
            .iter()
            .map(|(name, value)| format!("{name} = {}", text(value)))
            .collect::<Vec<_>>()
            .join(" AND "),
        _ => "every event".into(),
    }
}

fn dialect(filter: &Value) -> String {
    let Some((name, value)) = filter.as_object().and_then(|f| f.iter().next()) else {
        return filter.to_string();
    };
    let attributes = |operator: &str| {
        value
            .as_object()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| format!("{k} {operator} {}", text(v)))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            })
            .unwrap_or_default()
    };
    match name.as_str() {
        "cesql" => format!("CESQL {}", text(value)),
        "exact" => attributes("="),
        "prefix" => attributes("starts with"),
        "suffix" => attributes("ends with"),
        "not" => format!("NOT ({})", dialect(value)),
        "all" | "any" => {
            let joined = if name == "all" { " AND " } else { " OR " };
            let parts: Vec<String> = value
                .as_array()
                .map(|all| all.iter().map(dialect).collect())
                .unwrap_or_default();
            format!("({})", parts.join(joined))
        }
        _ => filter.to_string(),
    }
}

fn delivery_text(delivery: &Value) -> String {
    let Some(delivery) = delivery.as_object() else {
        return "the Broker's (or the defaults)".into();
    };
    let mut parts = vec![];
    if let Some(retry) = delivery.get("retry") {
        parts.push(format!("retry {}", text(retry)));
    }
    if let Some(policy) = delivery.get("backoffPolicy") {
        parts.push(format!("{} backoff", text(policy)));
    }
    if let Some(delay) = delivery.get("backoffDelay") {
        parts.push(format!("from {}", text(delay)));
    }
    if let Some(timeout) = delivery.get("timeout") {
        parts.push(format!("timeout {}", text(timeout)));
    }
    if let Some(sink) = delivery.get("deadLetterSink") {
        parts.push(format!("dead letters to {}", destination(sink)));
    }
    parts.join(", ")
}

fn conditions(conditions: &Value) -> String {
    let Some(all) = conditions.as_array().filter(|all| !all.is_empty()) else {
        return "Conditions:  none yet\n".into();
    };
    let now = jiff::Timestamp::now();
    let mut rows = vec![
        ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    for condition in all {
        rows.push(vec![
            text(&condition["type"]),
            text(&condition["status"]),
            text(&condition["reason"]),
            condition
                .get("lastTransitionTime")
                .map(|t| age(t, now))
                .unwrap_or_default(),
            text(&condition["message"]),
        ]);
    }
    let table: String = columns(&rows)
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect();
    format!("Conditions:\n{table}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_trigger_is_spelled_out() {
        let trigger = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "big-orders", "namespace": "shop", "labels": {"team": "a"}},
            "spec": {"broker": "default",
                     "filters": [{"exact": {"type": "order.created"}},
                                 {"any": [{"prefix": {"source": "erp"}}, {"cesql": "total > 100"}]}],
                     "subscriber": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "fn"}, "uri": "/orders"},
                     "delivery": {"retry": 3, "backoffPolicy": "exponential", "deadLetterSink": {"uri": "http://dls"}}},
            "status": {"subscriberUri": "http://fn.shop.svc/orders",
                       "conditions": [{"type": "Ready", "status": "True", "reason": "", "message": ""}]}
        });
        let text = describe(&trigger).expect("described");
        assert!(text.contains("Name:        big-orders\n"), "{text}");
        assert!(text.contains("Labels:      team=a\n"), "{text}");
        assert!(
            text.contains("Filter:      type = order.created\n             AND (source starts with erp OR CESQL total > 100)\n"),
            "{text}"
        );
        assert!(text.contains("Subscriber:  Service fn /orders\n"), "{text}");
        assert!(
            text.contains(
                "Delivery:    retry 3, exponential backoff, dead letters to http://dls\n"
            ),
            "{text}"
        );
        assert!(text.contains("Conditions:\n  TYPE    STATUS"), "{text}");
        assert!(text.contains("  Ready   True"), "{text}");
    }
}
