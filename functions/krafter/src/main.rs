//! `krafter`: the embedded server and the operator commands. Only wiring: every behaviour
//! lives in `krafter-shared` (the emulator tooling in `krafter-ops`). One module per command.

mod aws;
mod keys;
mod serve;
mod settings_args;
mod stores;
mod teams;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: a burst of webhook calls allocates and frees
/// across threads, where glibc's malloc spent a sixth of the server's CPU (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "krafter", version, about = "Krafter Cron: a cron for webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and fire the jobs' webhooks, storing everything in one SQLite file.
    Serve(Box<serve::ServeArgs>),
    /// Issue, list and revoke API keys (embedded SQLite file or hosted DynamoDB table).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Teams' webhook signing secrets: show, rotate.
    #[command(subcommand)]
    Teams(teams::TeamsCommand),
    /// Local tooling for the hosted (AWS) backend on an emulator.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(*args).await,
        Command::Keys(cmd) => keys::keys(cmd).await,
        Command::Teams(cmd) => teams::teams(cmd).await,
        Command::Aws(cmd) => aws::aws(cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// `error: ...`, then each source on its own `caused by:` line.
fn print_error(e: &(dyn std::error::Error + 'static)) {
    say(format_args!("error: {e}"));
    let mut source = e.source();
    while let Some(s) = source {
        say(format_args!("  caused by: {s}"));
        source = s.source();
    }
}

/// A line for humans on stderr. A closed stderr must not stop the server.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KRAFTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
