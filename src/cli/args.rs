//! The client commands' arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::resources::check_name;

/// Where the server is and who is asking.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The control listener, e.g. http://127.0.0.1:8080. Default: the
    /// `endpoints.json` of `--data-dir` when a server runs there, else
    /// http://127.0.0.1:8080.
    #[arg(long, env = "MESHBROKER_SERVER")]
    pub server: Option<String>,
    /// The events listener, e.g. http://127.0.0.1:8081 (for `send`). Default:
    /// as for `--server`, else http://127.0.0.1:8081.
    #[arg(long, env = "MESHBROKER_EVENTS")]
    pub events: Option<String>,
    /// A bearer token (the admin's or a namespace's). Default: the data
    /// directory's generated admin token, when there is one.
    #[arg(long, env = "MESHBROKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A context saved by `login` (default: the current one).
    #[arg(long, env = "MESHBROKER_CONTEXT")]
    pub context: Option<String>,
    /// The data directory of a server on this machine, for its defaults.
    #[arg(
        long = "data-dir",
        env = "MESHBROKER_DATA_DIR",
        default_value = "meshbroker-data"
    )]
    pub data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// List objects of a kind, or show one (kubectl's `get`).
    Get {
        /// A kind, singular or plural, any case (trigger, Triggers, brokers…).
        kind: String,
        #[arg(value_parser = object_name)]
        name: Option<String>,
        /// The namespace; without it, a namespaced kind is listed in all of them.
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        /// After the list, print each change as it happens (until interrupted).
        #[arg(short, long, conflicts_with = "name")]
        watch: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Create or update every object of a YAML or JSON file (several YAML
    /// documents allowed; `-` reads standard input).
    Apply {
        #[arg(short, long)]
        filename: PathBuf,
        /// The namespace of objects that name none.
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete an object.
    Delete {
        kind: String,
        #[arg(value_parser = object_name)]
        name: String,
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// The Event ServiceClasses (OSB catalog): all, or those a namespace may provision.
    Classes {
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Provision a class into a namespace (OSB), showing the operation's steps.
    Provision {
        /// The instance's name (its OSB instance id).
        instance: String,
        /// The class, by name or id.
        #[arg(long)]
        class: String,
        /// The plan, by name or id; default: the class's only plan.
        #[arg(long)]
        plan: Option<String>,
        #[arg(short, long, value_parser = namespace_name)]
        namespace: String,
        /// A parameter, `key=value` (repeatable; a value that is JSON is taken as such).
        #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// All parameters as one JSON object.
        #[arg(long = "params-json", conflicts_with = "params")]
        params_json: Option<String>,
        /// Return once the server accepted the request.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Deprovision an instance (OSB), showing the operation's steps.
    Deprovision {
        instance: String,
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// The provisioned instances, with their last operation.
    Instances {
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Send one CloudEvent to a Broker, a Channel or as an Application.
    Send {
        #[command(flatten)]
        to: SendTo,
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[arg(long = "type")]
        ty: String,
        /// Default: `meshbroker-cli` (an Application's events carry its name).
        #[arg(long, default_value = "meshbroker-cli")]
        source: String,
        /// Default: a fresh UUID.
        #[arg(long)]
        id: Option<String>,
        /// The data: text, or `@file` (`@-` for standard input).
        #[arg(long)]
        data: Option<String>,
        #[arg(long, default_value = "application/json")]
        data_content_type: String,
        /// `ce-` extension attributes, `name=value` (repeatable), e.g. eventtypeversion=v1.
        #[arg(long = "extension", short = 'x', value_name = "NAME=VALUE")]
        extensions: Vec<String>,
        /// Structured mode (one JSON document) instead of binary mode.
        #[arg(long)]
        structured: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Follow what a Broker routes: each event, the Triggers it passes, how
    /// each delivery ends (until interrupted).
    Tail {
        #[arg(value_parser = object_name)]
        broker: String,
        #[arg(short, long, value_parser = namespace_name)]
        namespace: String,
        /// `json`: the server's records as they come, one per line.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Shortcuts for Triggers.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Show one object for people: its conditions, and a Trigger's filter
    /// and delivery spelled out.
    Describe {
        kind: String,
        #[arg(value_parser = object_name)]
        name: String,
        #[arg(short, long, value_parser = namespace_name)]
        namespace: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Check a server and token and save them as a context (the current one),
    /// in a file only you may read.
    Login {
        /// The context's name.
        #[arg(long = "as", default_value = "default", value_parser = context_name)]
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// The saved contexts.
    Contexts,
    /// Make a saved context the current one.
    UseContext { name: String },
}

/// Where `send` sends.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct SendTo {
    /// A Broker of `--namespace`.
    #[arg(long, value_parser = object_name)]
    pub broker: Option<String>,
    /// A Channel of `--namespace`.
    #[arg(long, value_parser = object_name)]
    pub channel: Option<String>,
    /// As this Application (its credential, or the admin token).
    #[arg(long, value_parser = object_name)]
    pub application: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TriggerCommand {
    /// Create a Trigger on a Broker; a CESQL filter is checked by the server
    /// before anything is written.
    Create {
        #[arg(value_parser = object_name)]
        name: String,
        #[arg(short, long, value_parser = namespace_name)]
        namespace: String,
        #[arg(long, default_value = "default", value_parser = object_name)]
        broker: String,
        /// Only events of this type.
        #[arg(long = "type")]
        ty: Option<String>,
        /// Only events from this source.
        #[arg(long)]
        source: Option<String>,
        /// A CloudEvents SQL filter.
        #[arg(long)]
        cesql: Option<String>,
        /// The subscriber's URI.
        #[arg(long)]
        sink: String,
        /// Return once written, without waiting for Ready.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

impl ClientCommand {
    /// Where the command's server is; None for those that talk to none.
    pub fn connection(&self) -> Option<&Connection> {
        Some(match self {
            Self::Get { connection, .. }
            | Self::Apply { connection, .. }
            | Self::Delete { connection, .. }
            | Self::Classes { connection, .. }
            | Self::Provision { connection, .. }
            | Self::Deprovision { connection, .. }
            | Self::Instances { connection, .. }
            | Self::Send { connection, .. }
            | Self::Tail { connection, .. }
            | Self::Trigger(TriggerCommand::Create { connection, .. })
            | Self::Describe { connection, .. }
            | Self::Login { connection, .. } => connection,
            Self::Contexts | Self::UseContext { .. } => return None,
        })
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Yaml,
    Json,
}

/// An object's name as the server takes it (a DNS-1123 subdomain): a name
/// is put into request paths, where `/`, `..` or `?` would name something else.
pub fn object_name(name: &str) -> Result<String, String> {
    check_name(name, false)
        .map_err(|invalid| format!("not an object name: {}", invalid.message))?;
    Ok(name.to_string())
}

/// A namespace's name (a DNS-1123 label).
pub fn namespace_name(name: &str) -> Result<String, String> {
    check_name(name, true)
        .map_err(|invalid| format!("not a namespace name: {}", invalid.message))?;
    Ok(name.to_string())
}

/// A context's name: something to type again, so not empty and no control
/// characters.
fn context_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err("a context needs a name of printable characters".into());
    }
    Ok(name.to_string())
}
