//! `send` (one CloudEvent to an ingress) and `tail` (a Broker's live tail).

use std::io::Write;

use serde_json::{Map, Value};

use super::args::{Format, SendTo};
use super::client::{Client, read, refused};
use super::failure::Failure;
use super::kinds::path_of;
use super::output::text;
use crate::ids::random_uuid;
use crate::resources::{Broker, kind_of};

pub struct Outgoing {
    pub ty: String,
    pub source: String,
    pub id: Option<String>,
    pub data: Option<String>,
    pub data_content_type: String,
    pub extensions: Vec<String>,
    pub structured: bool,
}

/// The ingress path of a Broker, a Channel or an Application.
fn ingress_path(to: &SendTo, namespace: Option<&str>) -> Result<String, Failure> {
    let namespace =
        || namespace.ok_or_else(|| Failure::Usage("a Broker or Channel needs --namespace".into()));
    match (&to.broker, &to.channel, &to.application) {
        (Some(broker), _, _) => Ok(format!("/{}/{broker}", namespace()?)),
        (_, Some(channel), _) => Ok(format!("/channels/{}/{channel}", namespace()?)),
        (_, _, Some(application)) => Ok(format!("/{application}/events")),
        _ => Err(Failure::Usage(
            "say where: --broker, --channel or --application".into(),
        )),
    }
}

/// The data as given: text, `@file`, or `@-` (standard input).
fn data_of(given: Option<&str>) -> Result<Vec<u8>, Failure> {
    match given {
        None => Ok(Vec::new()),
        Some("@-") => {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)
                .map_err(|e| Failure::Usage(format!("reading standard input: {e}")))?;
            Ok(data)
        }
        Some(given) => match given.strip_prefix('@') {
            Some(file) => std::fs::read(file).map_err(|e| Failure::Usage(format!("{file}: {e}"))),
            None => Ok(given.as_bytes().to_vec()),
        },
    }
}

fn extensions(pairs: &[String]) -> Result<Vec<(String, String)>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| Failure::Usage(format!("--extension {pair:?} is not NAME=VALUE")))?;
            let name = name.to_ascii_lowercase();
            if CORE_ATTRIBUTES.contains(&name.as_str()) {
                return Err(Failure::Usage(format!(
                    "--extension {name}: a core attribute, set by its own option"
                )));
            }
            Ok((name, value.to_string()))
        })
        .collect()
}

/// The attributes `send` sets from its own options (and the data), never
/// through `--extension`: in structured mode one would silently replace the
/// other. (`subject`, `time` and `dataschema` have no option: `-x` sets them.)
const CORE_ATTRIBUTES: [&str; 7] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "data",
    "data_base64",
];

pub async fn send(
    client: &Client,
    to: &SendTo,
    namespace: Option<&str>,
    event: Outgoing,
) -> Result<String, Failure> {
    let path = ingress_path(to, namespace)?;
    let id = event.id.clone().unwrap_or_else(random_uuid);
    let data = data_of(event.data.as_deref())?;
    let extensions = extensions(&event.extensions)?;
    let mut request = client.events_request(&path);
    if event.structured {
        let mut document = Map::new();
        for (name, value) in [
            ("specversion", "1.0"),
            ("id", id.as_str()),
            ("source", event.source.as_str()),
            ("type", event.ty.as_str()),
            ("datacontenttype", event.data_content_type.as_str()),
        ] {
            document.insert(name.into(), Value::String(value.into()));
        }
        for (name, value) in &extensions {
            document.insert(name.clone(), Value::String(value.clone()));
        }
        if !data.is_empty() {
            let json = event.data_content_type.contains("json");
            let value = match serde_json::from_slice::<Value>(&data) {
                Ok(value) if json => value,
                _ => Value::String(String::from_utf8_lossy(&data).into_owned()),
            };
            document.insert("data".into(), value);
        }
        request = request
            .header("content-type", "application/cloudevents+json")
            .body(Value::Object(document).to_string());
    } else {
        request = request
            .header("ce-specversion", "1.0")
            .header("ce-id", &id)
            .header("ce-source", &event.source)
            .header("ce-type", &event.ty)
            .header("content-type", &event.data_content_type);
        for (name, value) in &extensions {
            request = request.header(format!("ce-{name}"), value);
        }
        request = request.body(data);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Failure::unreachable(&client.events, &e))?;
    let (status, answer) = read(response).await?;
    refused(status, &answer)?;
    Ok(format!("event {id} accepted ({})\n", status.as_u16()))
}

/// Follows a Broker's tail, printing each record as it comes, until the
/// server ends it (or the user interrupts).
pub async fn tail(
    client: &Client,
    broker: &str,
    namespace: &str,
    format: Format,
) -> Result<String, Failure> {
    let path = format!(
        "{}/tail",
        path_of(kind_of::<Broker>(), Some(namespace), Some(broker))
    );
    let mut out = std::io::stdout();
    let mut closed = false;
    client
        .follow_lines(&path, |line| {
            let shown = match format {
                Format::Table => serde_json::from_slice::<Value>(line)
                    .map(|record| readable(&record) + "\n")
                    .unwrap_or_else(|_| String::from_utf8_lossy(line).into_owned()),
                Format::Json | Format::Yaml => String::from_utf8_lossy(line).into_owned(),
            };
            // A closed pipe (`| head`) ends the tail.
            closed = out
                .write_all(shown.as_bytes())
                .and_then(|()| out.flush())
                .is_err();
            !closed
        })
        .await?;
    Ok(match closed {
        true => String::new(),
        false => "the server ended the tail\n".into(),
    })
}

/// One record as a line for people.
fn readable(record: &Value) -> String {
    let time = text(&record["time"]);
    let trigger = text(&record["trigger"]);
    let id = text(&record["id"]);
    match record["type"].as_str().unwrap_or_default() {
        "TAILING" => format!(
            "tailing Broker {}/{} (Ctrl-C stops)",
            text(&record["namespace"]),
            text(&record["broker"])
        ),
        "RECEIVED" => {
            let event = &record["event"];
            let triggers: Vec<String> = record["triggers"]
                .as_array()
                .map(|all| all.iter().map(text).collect())
                .unwrap_or_default();
            let to = match triggers.is_empty() {
                true => "no Trigger passes it".to_string(),
                false => format!("→ {}", triggers.join(", ")),
            };
            format!(
                "{time} RECEIVED {} id={} source={} via {} {to}",
                text(&event["type"]),
                text(&event["id"]),
                text(&event["source"]),
                text(&record["via"])
            )
        }
        "REFUSED" => format!(
            "{time} REFUSED id={id} via {}: {}",
            text(&record["via"]),
            text(&record["reason"])
        ),
        "DELIVERED" => format!(
            "{time} DELIVERED id={id} to {trigger} ({})",
            text(&record["status"])
        ),
        "DEAD_LETTERED" => format!(
            "{time} DEAD_LETTERED id={id} from {trigger}: {} (knativeerrorcode {}) → {}",
            text(&record["reason"]),
            text(&record["knativeerrorcode"]),
            text(&record["sink"])
        ),
        "UNDELIVERABLE" => format!(
            "{time} UNDELIVERABLE id={id} from {trigger}: {}",
            text(&record["reason"])
        ),
        "SKIPPED" => format!(
            "… {} records skipped (the tail read too slowly)",
            text(&record["count"])
        ),
        _ => record.to_string(),
    }
}
