//! `krafter`: the embedded server and the operator commands. Only wiring: every behaviour
//! lives in `krafter-shared` (the emulator tooling in `krafter-ops`). One module per command.

mod audit;
mod aws;
mod backup;
mod crontab;
mod jobs;
mod keys;
mod migrate;
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
    /// The job API from the command line, against any Krafter Cron (local or hosted).
    Jobs(Box<jobs::JobsArgs>),
    /// A team's audit log: every change asked of the API, done or refused.
    Audit(audit::AuditArgs),
    /// Copy the embedded store to a file while the server runs (SQLite's online backup).
    Backup(backup::BackupArgs),
    /// Put a backup in place of the embedded store (refused while a server holds it).
    Restore(backup::RestoreArgs),
    /// Write a team's jobs as JSON (from the embedded store or the hosted table).
    Export(migrate::ExportArgs),
    /// Write exported jobs to a store (either backend), keeping ids, schedules and state.
    Import(migrate::ImportArgs),
    /// Crontab lines that call curl or wget become jobs of a team; prints the plan.
    ImportCrontab(crontab::ImportCrontabArgs),
    /// Local tooling for the hosted (AWS) backend on an emulator.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = init_tracing() {
        say(format_args!("error: {e}"));
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Jobs(args) => {
            return jobs::jobs(*args).await.unwrap_or_else(|e| {
                print_error(e.as_ref());
                ExitCode::FAILURE
            });
        }
        Command::Serve(args) => serve::serve(*args).await,
        Command::Keys(cmd) => keys::keys(cmd).await,
        Command::Teams(cmd) => teams::teams(cmd).await,
        Command::Audit(args) => audit::audit(args).await,
        Command::Backup(args) => backup::run_backup(args),
        Command::Restore(args) => backup::run_restore(args),
        Command::Export(args) => migrate::run_export(args).await,
        Command::Import(args) => migrate::run_import(args).await,
        Command::ImportCrontab(args) => crontab::import_crontab(args).await,
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

/// Logs on stderr, as `KRAFTER_LOG` filters and `KRAFTER_LOG_FORMAT` (text or json) says.
fn init_tracing() -> Result<(), String> {
    use krafter_shared::logs::{LogFormat, LogOutput};
    let filter = tracing_subscriber::EnvFilter::try_from_env("KRAFTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let format = LogFormat::parse(std::env::var("KRAFTER_LOG_FORMAT").ok().as_deref())?;
    LogOutput {
        filter,
        format,
        writer: std::io::stderr,
        ansi: std::io::stderr().is_terminal(),
        time: true,
    }
    .init();
    Ok(())
}
