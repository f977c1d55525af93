//! The `meshbroker` command: `serve` (the default) runs the broker; the
//! client commands (`get`, `apply`, `provision`, `send`, `tail`…) talk to a
//! running one (see `cli`).

use clap::{CommandFactory, Parser, Subcommand};
use meshbroker::config::Settings;
use meshbroker::server::serve;
use meshbroker::telemetry::init_logging;

/// Per-event allocations on several threads, next to a large long-lived routing
/// table: glibc's allocator spent 10 % of the dataplane's time in `_int_malloc`
/// with 10,000 Triggers (profiled); mimalloc keeps allocation cost flat.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "meshbroker",
    version,
    about = "Open Service Broker driven event mesh"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker: control listener, events listener, controllers (the default).
    Serve {
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Print the CustomResourceDefinitions of every kind meshbroker stores (YAML).
    Crds,
    /// Print a shell completion script, e.g. `meshbroker completion bash > /etc/bash_completion.d/meshbroker`.
    Completion { shell: clap_complete::Shell },
    #[command(flatten)]
    Client(Box<meshbroker::cli::ClientCommand>),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match cli.command {
        Some(Command::Serve { settings }) => *settings,
        Some(Command::Crds) => {
            return match meshbroker::resources::crds::yaml() {
                Ok(text) => {
                    print!("{text}");
                    std::process::ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("meshbroker: cannot render the CRDs: {error}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Some(Command::Completion { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "meshbroker",
                &mut std::io::stdout(),
            );
            return std::process::ExitCode::SUCCESS;
        }
        Some(Command::Client(command)) => return meshbroker::cli::run(*command).await,
        None => cli.settings,
    };
    let config = match settings.build() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("meshbroker: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    match serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "meshbroker failed");
            std::process::ExitCode::FAILURE
        }
    }
}
