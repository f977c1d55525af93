//! Objects for people: tables in kubectl's style, or YAML and JSON.

use serde_json::Value;

use super::args::Format;
use super::failure::Failure;

pub fn render(value: &Value, format: Format, namespaced: bool) -> Result<String, Failure> {
    match format {
        Format::Json => serde_json::to_string_pretty(value)
            .map(|text| text + "\n")
            .map_err(|e| Failure::Refused(e.to_string())),
        Format::Yaml => serde_saphyr::to_string(value).map_err(|e| Failure::Refused(e.to_string())),
        Format::Table => Ok(table(value, namespaced)),
    }
}

/// JSON or YAML as `render` writes them; None for a table (the caller's own).
pub fn serialized(value: &Value, format: Format) -> Option<Result<String, Failure>> {
    (format != Format::Table).then(|| render(value, format, false))
}

fn table(value: &Value, namespaced: bool) -> String {
    let items: Vec<&Value> = match value["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    };
    if items.is_empty() {
        return "No resources found.\n".into();
    }
    let mut rows = vec![];
    let mut header = vec![];
    if namespaced {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "READY", "REASON", "AGE"]);
    rows.push(header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    let now = jiff::Timestamp::now();
    for item in items {
        let metadata = &item["metadata"];
        let mut row = vec![];
        if namespaced {
            row.push(text(&metadata["namespace"]));
        }
        row.push(text(&metadata["name"]));
        let ready = item["status"]["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == "Ready"));
        row.push(ready.map_or("-".into(), |c| text(&c["status"])));
        row.push(ready.map_or("".into(), |c| text(&c["reason"])));
        row.push(age(&metadata["creationTimestamp"], now));
        rows.push(row);
    }
    columns(&rows)
}

/// Rows (the first the header) in columns two spaces apart, kubectl's way.
pub fn columns(rows: &[Vec<String>]) -> String {
    let Some(header) = rows.first() else {
        return String::new();
    };
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// A JSON value as a table cell.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// kubectl's ages: 45s, 12m, 5h, 3d.
pub fn age(created: &Value, now: jiff::Timestamp) -> String {
    let Some(created) = created
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    let seconds = now.duration_since(created).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_say_ready() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "a", "namespace": "shop", "creationTimestamp": "2020-01-01T00:00:00Z"},
             "status": {"conditions": [{"type": "Ready", "status": "True", "reason": ""}]}},
            {"metadata": {"name": "longer-name", "namespace": "shop"}}
        ]});
        let text = table(&list, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAMESPACE   NAME          READY   REASON   AGE");
        assert!(
            lines[1].starts_with("shop        a             True"),
            "{text}"
        );
        assert!(lines[1].ends_with('d'), "{text}");
        assert!(lines[2].contains("longer-name   -"), "{text}");
        assert_eq!(
            table(&serde_json::json!({"items": []}), true),
            "No resources found.\n"
        );
    }
}
