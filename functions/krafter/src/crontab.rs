//! `krafter import-crontab`: crontab lines that call curl or wget become a team's jobs,
//! through the same rules and messages as the API; the plan is printed, with every line
//! that cannot be converted and why.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use krafter_shared::adapters::dns::SystemResolver;
use krafter_shared::adapters::sqlite::{
    SqliteDb, SqliteExecutionStore, SqliteJobStore, SqliteRunQueue,
};
use krafter_shared::crontab::{CrontabLine, read_crontab};
use krafter_shared::domain::{FieldErrors, InputError, JobDraft, TeamId};
use krafter_shared::hosted::{Hosted, process_env};
use krafter_shared::ports::SystemClock;
use krafter_shared::service::{JobService, ServiceError};
use krafter_shared::settings::{Mode, Settings};
use krafter_shared::targets::TargetGuard;

use crate::stores::{Backend, DbArg, aws_clients, embedded_schedule_sync};
use crate::{AnyError, say};

#[derive(Args)]
pub struct ImportCrontabArgs {
    /// The crontab (as `crontab -l` prints it).
    file: PathBuf,
    /// The team the jobs are created for.
    #[arg(long)]
    team: String,
    /// Print the plan, create nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, env = "KRAFTER_BACKEND", value_enum, default_value = "sqlite")]
    backend: Backend,
    #[command(flatten)]
    db: DbArg,
}

/// The job service on the embedded store, as `krafter serve` would build it.
fn sqlite_service(db: &std::path::Path) -> Result<JobService, AnyError> {
    let db = SqliteDb::open(db)?;
    let settings = Settings::defaults(Mode::Embedded);
    Ok(JobService {
        jobs: Arc::new(SqliteJobStore::new(db.clone())),
        executions: Arc::new(SqliteExecutionStore::new(db.clone())),
        queue: Arc::new(SqliteRunQueue::new(db)),
        schedules: embedded_schedule_sync(),
        clock: Arc::new(SystemClock),
        max_jobs_per_team: settings.max_jobs_per_team,
        targets: TargetGuard::new(settings.target_policy, Arc::new(SystemResolver)),
    })
}

pub async fn import_crontab(args: ImportCrontabArgs) -> Result<(), AnyError> {
    let team = TeamId::parse(&args.team)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let service = match args.backend {
        Backend::Sqlite => sqlite_service(&args.db.db)?,
        Backend::Dynamodb => {
            let env = process_env();
            Hosted::new(aws_clients().await, env.resources()?, env.settings()?).service()
        }
    };
    let (mut created, mut skipped) = (0, 0);
    for entry in read_crontab(&text) {
        match entry {
            CrontabLine::Skipped { line, reason } => {
                skipped += 1;
                println!("line {line}: skipped: {reason}");
            }
            CrontabLine::Job { line, draft } => {
                let plan = describe(&draft);
                match create(&service, &team, &draft, args.dry_run).await {
                    Ok(id) => {
                        created += 1;
                        println!("line {line}: create {plan}{id}");
                    }
                    Err(why) => {
                        skipped += 1;
                        println!("line {line}: skipped: {why} ({plan})");
                    }
                }
            }
        }
    }
    let mode = if args.dry_run {
        " (dry run: nothing created)"
    } else {
        ""
    };
    say(format_args!(
        "krafter: {created} jobs for team {team}, {skipped} lines not converted{mode}"
    ));
    Ok(())
}

/// Creates the job (or, in a dry run, checks it), returning ` → <id>`, or why not.
async fn create(
    service: &JobService,
    team: &TeamId,
    draft: &JobDraft,
    dry_run: bool,
) -> Result<String, String> {
    if dry_run {
        let now = chrono::Utc::now();
        return draft
            .check_new(draft.parse_urls(), now)
            .map(|_| String::new())
            .map_err(|e| refusal(&ServiceError::Input(e)));
    }
    service
        .create(team, draft)
        .await
        .map(|job| format!(" → {}", job.id))
        .map_err(|e| refusal(&e))
}

/// The API's message for a refused job.
fn refusal(e: &ServiceError) -> String {
    let messages = |errs: &FieldErrors| -> String {
        errs.fields()
            .map(|f| format!("{f} {}", errs.get(f).unwrap_or_default().join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match e {
        ServiceError::Input(InputError::Invalid(errs) | InputError::Types(errs)) => messages(errs),
        other => other.to_string(),
    }
}

fn describe(d: &JobDraft) -> String {
    format!(
        "{} ({}) {} {}",
        d.schedule.as_deref().unwrap_or(""),
        d.timezone.as_deref().unwrap_or("UTC"),
        d.method.as_deref().unwrap_or("GET"),
        d.url.as_deref().unwrap_or("")
    )
}
