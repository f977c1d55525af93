//! The client commands' arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Where the server is and who is asking.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The control listener, e.g. http://127.0.0.1:8080. Default: the
    /// `endpoints.json` of `--data-dir` when a server runs there, else
    /// http://127.0.0.1:8080.
    #[arg(long, env = "MESHBROKER_SERVER")]
    pub server: Option<String>,
    /// A bearer token (the admin's or a namespace's). Default: the data
    /// directory's generated admin token, when there is one.
    #[arg(long, env = "MESHBROKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
        name: Option<String>,
        /// The namespace; without it, a namespaced kind is listed in all of them.
        #[arg(short, long)]
        namespace: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Create or update every object of a YAML or JSON file (several YAML
    /// documents allowed; `-` reads standard input).
    Apply {
        #[arg(short, long)]
        filename: PathBuf,
        /// The namespace of objects that name none.
        #[arg(short, long)]
        namespace: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete an object.
    Delete {
        kind: String,
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

impl ClientCommand {
    pub fn connection(&self) -> &Connection {
        match self {
            Self::Get { connection, .. }
            | Self::Apply { connection, .. }
            | Self::Delete { connection, .. } => connection,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Yaml,
    Json,
}
