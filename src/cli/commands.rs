//! What each client command does, through the resource API.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use super::args::{ClientCommand, TriggerCommand};
use super::catalog::{self, ProvisionRequest};
use super::client::{Client, Failure};
use super::events::{self, Outgoing};
use super::kinds::{kind_named, namespace_for, path_of};
use super::output::render;
use super::triggers::{self, NewTrigger};
use crate::resources::kinds;

/// Runs a client command; prints its outcome; answers the exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    let outcome = match Client::new(command.connection()) {
        Ok(client) => execute(&client, command).await,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Refused(message)) => {
            eprintln!("Error from server: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn execute(client: &Client, command: ClientCommand) -> Result<String, Failure> {
    match command {
        ClientCommand::Get {
            kind,
            name,
            namespace,
            output,
            ..
        } => {
            let kind = kind_named(&kind)?;
            let value = match &name {
                Some(name) => {
                    let namespace = namespace_for(kind, namespace.as_deref());
                    client
                        .send(Method::GET, &path_of(kind, namespace, Some(name)), None)
                        .await?
                }
                None => {
                    let path = path_of(kind, namespace.as_deref(), None);
                    client.send(Method::GET, &path, None).await?
                }
            };
            render(&value, output, kind.namespaced)
        }
        ClientCommand::Delete {
            kind,
            name,
            namespace,
            ..
        } => {
            let kind = kind_named(&kind)?;
            let namespace = namespace_for(kind, namespace.as_deref());
            client
                .send(Method::DELETE, &path_of(kind, namespace, Some(&name)), None)
                .await?;
            Ok(format!("{}/{name} deleted\n", kind.plural))
        }
        ClientCommand::Apply {
            filename,
            namespace,
            ..
        } => {
            let text = if filename.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&filename)
            }
            .map_err(|e| Failure::Usage(format!("{}: {e}", filename.display())))?;
            let objects = documents(&text)
                .map_err(|e| Failure::Usage(format!("{}: {e}", filename.display())))?;
            let mut out = String::new();
            for object in objects {
                out.push_str(&apply(client, object, namespace.as_deref()).await?);
            }
            Ok(out)
        }
        ClientCommand::Classes {
            namespace, output, ..
        } => catalog::classes(client, namespace.as_deref(), output).await,
        ClientCommand::Provision {
            instance,
            class,
            plan,
            namespace,
            params,
            params_json,
            no_wait,
            ..
        } => {
            let request = ProvisionRequest {
                instance: &instance,
                class: &class,
                plan: plan.as_deref(),
                namespace: &namespace,
                parameters: catalog::parameters(&params, params_json.as_deref())?,
                wait: !no_wait,
            };
            catalog::provision(client, request).await
        }
        ClientCommand::Deprovision {
            instance, no_wait, ..
        } => catalog::deprovision(client, &instance, !no_wait).await,
        ClientCommand::Instances {
            namespace, output, ..
        } => catalog::instances(client, namespace.as_deref(), output).await,
        ClientCommand::Send {
            to,
            namespace,
            ty,
            source,
            id,
            data,
            data_content_type,
            extensions,
            structured,
            ..
        } => {
            let event = Outgoing {
                ty,
                source,
                id,
                data,
                data_content_type,
                extensions,
                structured,
            };
            events::send(client, &to, namespace.as_deref(), event).await
        }
        ClientCommand::Tail {
            broker,
            namespace,
            output,
            ..
        } => events::tail(client, &broker, &namespace, output).await,
        ClientCommand::Trigger(TriggerCommand::Create {
            name,
            namespace,
            broker,
            ty,
            source,
            cesql,
            sink,
            no_wait,
            ..
        }) => {
            let trigger = NewTrigger {
                name: &name,
                namespace: &namespace,
                broker: &broker,
                ty: ty.as_deref(),
                source: source.as_deref(),
                cesql: cesql.as_deref(),
                sink: &sink,
            };
            triggers::create(client, trigger, !no_wait).await
        }
    }
}

/// Every object of a YAML stream (JSON is YAML too); a `List` gives its items.
fn documents(text: &str) -> Result<Vec<Value>, String> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut objects = vec![];
    for document in documents {
        match document {
            Value::Null => {}
            Value::Object(_)
                if document["kind"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                objects.extend(document["items"].as_array().cloned().unwrap_or_default());
            }
            Value::Object(_) => objects.push(document),
            other => return Err(format!("a document is not an object: {other}")),
        }
    }
    Ok(objects)
}

/// Creates the object, or replaces it when it exists (keeping what the
/// server owns: its resourceVersion, so a concurrent change is a conflict,
/// and its status).
async fn apply(
    client: &Client,
    mut object: Value,
    namespace: Option<&str>,
) -> Result<String, Failure> {
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let kind_name = object["kind"].as_str().unwrap_or_default().to_string();
    let kind = kinds()
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind_name)
        .ok_or_else(|| Failure::Usage(format!("no kind {kind_name:?} in {api_version:?}")))?;
    let name = object["metadata"]["name"]
        .as_str()
        .ok_or_else(|| Failure::Usage(format!("a {kind_name} without metadata.name")))?
        .to_string();
    let namespace = namespace_for(kind, object["metadata"]["namespace"].as_str().or(namespace))
        .map(str::to_string);
    if let Some(namespace) = &namespace {
        object["metadata"]["namespace"] = Value::String(namespace.clone());
    }
    let item = path_of(kind, namespace.as_deref(), Some(&name));
    let label = format!("{}/{name}", kind.plural);
    match client.find(&item).await? {
        None => {
            let collection = path_of(kind, namespace.as_deref(), None);
            let created = client
                .send(Method::POST, &collection, Some(&object))
                .await?;
            Ok(format!("{label} created\n{}", secret_shown(&created)))
        }
        Some(stored) => {
            if stored.get("spec") == object.get("spec") && metadata_kept(&stored, &object) {
                return Ok(format!("{label} unchanged\n"));
            }
            object["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
            if let Some(status) = stored.get("status") {
                object["status"] = status.clone();
            }
            client.send(Method::PUT, &item, Some(&object)).await?;
            Ok(format!("{label} configured\n"))
        }
    }
}

/// The secret a created Application or AccessToken carries in its answer,
/// the only time the server shows it.
fn secret_shown(created: &Value) -> String {
    let status = &created["status"];
    match status["credential"]["token"]
        .as_str()
        .or_else(|| status["token"].as_str())
    {
        Some(token) => format!("  token (shown once, keep it): {token}\n"),
        None => String::new(),
    }
}

/// Every label and annotation written is stored as written (the server may
/// have added its own, which apply leaves alone).
fn metadata_kept(stored: &Value, written: &Value) -> bool {
    ["labels", "annotations"].iter().all(|field| {
        let kept = &stored["metadata"][field];
        written["metadata"][field]
            .as_object()
            .is_none_or(|wanted| wanted.iter().all(|(key, value)| &kept[key] == value))
    })
}
