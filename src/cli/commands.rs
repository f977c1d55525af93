//! What each client command does, through the resource API.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use std::io::Write;

use super::args::{ClientCommand, Format, TriggerCommand, namespace_name, object_name};
use super::catalog::{self, ProvisionRequest};
use super::client::Client;
use super::contexts::{Context, Contexts, config_path};
use super::describe::describe;
use super::events::{self, Outgoing};
use super::failure::Failure;
use super::kinds::{item_path, kind_named, namespace_for, path_of};
use super::output::render;
use super::output::{columns, text};
use super::triggers::{self, NewTrigger};
use crate::resources::kinds;

/// Runs a client command; prints its outcome; answers the exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    let outcome = match command.connection().map(Client::new) {
        None => local(command),
        Some(Ok(client)) => execute(&client, command).await,
        Some(Err(failure)) => Err(failure),
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
        Err(Failure::Unreachable(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The commands about the saved contexts, which talk to no server.
fn local(command: ClientCommand) -> Result<String, Failure> {
    let path = config_path().ok_or_else(|| {
        Failure::Usage("no place for contexts: set MESHBROKER_CONFIG or HOME".into())
    })?;
    let mut contexts = Contexts::load(&path)?;
    match command {
        ClientCommand::UseContext { name } => {
            contexts.chosen(Some(&name))?;
            contexts.current_context = Some(name.clone());
            contexts.save(&path)?;
            Ok(format!("switched to context {name}\n"))
        }
        _ if contexts.contexts.is_empty() => {
            Ok("No contexts: `meshbroker login` saves one.\n".into())
        }
        _ => Ok(columns(&contexts.table())),
    }
}

/// Checks the server and token (who the server says the token is), then
/// saves them under `name` as the current context.
async fn login(client: &Client, name: &str) -> Result<String, Failure> {
    let token = client
        .token
        .clone()
        .ok_or_else(|| Failure::Usage("log in with --token (or MESHBROKER_TOKEN)".into()))?;
    let who = client
        .send(Method::GET, "/console/api/whoami", None)
        .await?;
    let path = config_path().ok_or_else(|| {
        Failure::Usage("no place for contexts: set MESHBROKER_CONFIG or HOME".into())
    })?;
    let mut contexts = Contexts::load(&path)?;
    contexts.contexts.insert(
        name.to_string(),
        Context {
            server: client.base.clone(),
            events: Some(client.events.clone()),
            token: Some(token),
        },
    );
    contexts.current_context = Some(name.to_string());
    contexts.save(&path)?;
    let as_whom = match who["namespace"].as_str() {
        Some(namespace) => format!("namespace {namespace}"),
        None => "admin".into(),
    };
    Ok(format!(
        "logged in to {} as {as_whom}; context {name} saved in {}\n",
        client.base,
        path.display()
    ))
}

/// After the list, each change as it happens: a table row (no header), or
/// the object as JSON or YAML.
async fn watch(
    client: &Client,
    path: &str,
    listed: &Value,
    output: Format,
    namespaced: bool,
) -> Result<String, Failure> {
    let version = listed["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0");
    let watch_path = format!("{path}?watch=true&resourceVersion={version}");
    let mut out = std::io::stdout();
    let mut failed = None;
    client
        .follow_lines(&watch_path, |line| {
            let Ok(event) = serde_json::from_slice::<Value>(line) else {
                return true;
            };
            if event["type"] == "ERROR" {
                failed = Some(text(&event["object"]["message"]));
                return false;
            }
            let shown = match output {
                Format::Table => render(&event["object"], output, namespaced)
                    .map(|table| table.lines().skip(1).map(|l| format!("{l}\n")).collect()),
                _ => render(&event["object"], output, namespaced),
            };
            let shown = shown.unwrap_or_default();
            let separated = match output {
                Format::Yaml => format!("---\n{shown}"),
                _ => shown,
            };
            out.write_all(separated.as_bytes())
                .and_then(|()| out.flush())
                .is_ok()
        })
        .await?;
    match failed {
        Some(message) => Err(Failure::Refused(format!("the watch ended: {message}"))),
        None => Ok(String::new()),
    }
}

async fn execute(client: &Client, command: ClientCommand) -> Result<String, Failure> {
    match command {
        ClientCommand::Get {
            kind,
            name,
            namespace,
            output,
            watch: follow,
            ..
        } => {
            let kind = kind_named(&kind)?;
            let value = match &name {
                Some(name) => {
                    let path = item_path(kind, namespace.as_deref(), name);
                    client.send(Method::GET, &path, None).await?
                }
                None => {
                    let path = path_of(kind, namespace.as_deref(), None);
                    let listed = client.send(Method::GET, &path, None).await?;
                    if follow {
                        print!("{}", render(&listed, output, kind.namespaced)?);
                        return watch(client, &path, &listed, output, kind.namespaced).await;
                    }
                    listed
                }
            };
            render(&value, output, kind.namespaced)
        }
        ClientCommand::Describe {
            kind,
            name,
            namespace,
            ..
        } => {
            let path = item_path(kind_named(&kind)?, namespace.as_deref(), &name);
            describe(&client.send(Method::GET, &path, None).await?)
        }
        ClientCommand::Login { name, .. } => login(client, &name).await,
        ClientCommand::Contexts | ClientCommand::UseContext { .. } => local(command),
        ClientCommand::Delete {
            kind,
            name,
            namespace,
            ..
        } => {
            let kind = kind_named(&kind)?;
            let path = item_path(kind, namespace.as_deref(), &name);
            client.send(Method::DELETE, &path, None).await?;
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
        .ok_or_else(|| Failure::Usage(format!("a {kind_name} without metadata.name")))?;
    // Both go into request paths, as the command line's names do.
    let name = object_name(name)
        .map_err(|why| Failure::Usage(format!("{kind_name} metadata.name: {why}")))?;
    let namespace = namespace_for(kind, object["metadata"]["namespace"].as_str().or(namespace))
        .map(namespace_name)
        .transpose()
        .map_err(|why| Failure::Usage(format!("{kind_name} {name}: {why}")))?;
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
