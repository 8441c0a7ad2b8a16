//! `krafter export` and `krafter import`: a team's jobs between the embedded store and the
//! hosted tables (either way), keeping ids, schedules and state; importing twice changes
//! nothing the second time.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use krafter_shared::adapters::dynamodb::DynamoJobStore;
use krafter_shared::adapters::sqlite::{SqliteDb, SqliteJobStore};
use krafter_shared::domain::TeamId;
use krafter_shared::hosted::{Hosted, process_env};
use krafter_shared::ports::{JobStore, ScheduleSync};
use krafter_shared::service::migration::{Export, Imported, export, import_job, jobs_of};

use crate::stores::{Backend, DbArg, aws_clients, embedded_schedule_sync};
use crate::{AnyError, say};

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long)]
    team: String,
    /// Write here instead of stdout.
    #[arg(long)]
    to: Option<PathBuf>,
    #[arg(long, env = "KRAFTER_BACKEND", value_enum, default_value = "sqlite")]
    backend: Backend,
    #[command(flatten)]
    db: DbArg,
    /// The hosted jobs table (with --backend dynamodb).
    #[arg(long, env = "KRAFTER_JOBS_TABLE")]
    jobs_table: Option<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A file `krafter export` wrote.
    file: PathBuf,
    /// Print what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Into the embedded store (`--db`), or the hosted deployment (its tables and schedule
    /// group from the functions' environment: `krafter aws init` prints it).
    #[arg(long, env = "KRAFTER_BACKEND", value_enum, default_value = "sqlite")]
    backend: Backend,
    #[command(flatten)]
    db: DbArg,
}

pub async fn run_export(args: ExportArgs) -> Result<(), AnyError> {
    let team = TeamId::parse(&args.team)?;
    let jobs: Arc<dyn JobStore> = match args.backend {
        Backend::Sqlite => Arc::new(SqliteJobStore::new(SqliteDb::open(&args.db.db)?)),
        Backend::Dynamodb => {
            let table = args
                .jobs_table
                .as_deref()
                .ok_or("--backend dynamodb needs --jobs-table (or KRAFTER_JOBS_TABLE)")?;
            Arc::new(DynamoJobStore::new(aws_clients().await.dynamodb, table))
        }
    };
    let exported = export(jobs.as_ref(), &team, chrono::Utc::now()).await?;
    let text = serde_json::to_string_pretty(&exported)?;
    match &args.to {
        Some(path) => std::fs::write(path, text + "\n")?,
        None => println!("{text}"),
    }
    say(format_args!(
        "krafter: exported {} jobs of team {team}",
        exported.jobs.len()
    ));
    Ok(())
}

pub async fn run_import(args: ImportArgs) -> Result<(), AnyError> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let exported: Export = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a Krafter Cron export: {e}", args.file.display()))?;
    let jobs = jobs_of(&exported)?;
    let (store, schedules, max_jobs): (Arc<dyn JobStore>, Arc<dyn ScheduleSync>, u64) =
        match args.backend {
            Backend::Sqlite => {
                let settings = krafter_shared::settings::Settings::defaults(
                    krafter_shared::settings::Mode::Embedded,
                );
                let store = Arc::new(SqliteJobStore::new(SqliteDb::open(&args.db.db)?));
                (store, embedded_schedule_sync(), settings.max_jobs_per_team)
            }
            Backend::Dynamodb => {
                let env = process_env();
                let (resources, settings) = (env.resources()?, env.settings()?);
                let hosted = Hosted::new(aws_clients().await, resources, settings.clone());
                let schedules = Arc::new(hosted.schedules.clone());
                (hosted.jobs.clone(), schedules, settings.max_jobs_per_team)
            }
        };
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for job in &jobs {
        let done = import_job(
            store.as_ref(),
            schedules.as_ref(),
            job,
            max_jobs,
            args.dry_run,
        )
        .await?;
        println!(
            "{:<9}  {}  {}",
            done.as_str(),
            job.id,
            job.spec.name.as_str()
        );
        *counts.entry(done.as_str()).or_default() += 1;
        if done == Imported::OverQuota {
            say(format_args!(
                "  the target's job quota is reached: {} was not imported",
                job.id
            ));
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mode = if args.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    say(format_args!(
        "krafter: {} jobs of team {}: {}{mode}",
        jobs.len(),
        exported.team,
        summary.join(", ")
    ));
    Ok(())
}
