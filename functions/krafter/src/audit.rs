//! `krafter audit`: a team's audit log, newest first, from the embedded store or the hosted
//! audit table.

use std::sync::Arc;

use clap::Args;
use krafter_shared::adapters::dynamodb::DynamoAuditStore;
use krafter_shared::adapters::sqlite::{SqliteAuditStore, SqliteDb};
use krafter_shared::domain::{AuditEntry, AuditFilter, AuditId, JobId, TeamId, time};
use krafter_shared::ports::{AuditStore, PageRequest};
use krafter_shared::settings;

use crate::AnyError;
use crate::stores::{Backend, DbArg, aws_clients};

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long)]
    team: String,
    /// Only entries about this job.
    #[arg(long)]
    job: Option<JobId>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(long, env = "KRAFTER_BACKEND", value_enum, default_value = "sqlite")]
    backend: Backend,
    #[command(flatten)]
    db: DbArg,
    /// The hosted audit table (with --backend dynamodb).
    #[arg(long, env = "KRAFTER_AUDIT_TABLE")]
    audit_table: Option<String>,
}

async fn store(args: &AuditArgs) -> Result<Arc<dyn AuditStore>, AnyError> {
    Ok(match args.backend {
        Backend::Sqlite => Arc::new(SqliteAuditStore::new(SqliteDb::open(&args.db.db)?)),
        Backend::Dynamodb => {
            let table = args
                .audit_table
                .as_deref()
                .ok_or("--backend dynamodb needs --audit-table (or KRAFTER_AUDIT_TABLE)")?;
            let retention = std::time::Duration::from_secs(
                86_400 * settings::AUDIT_RETENTION_DAYS.default.parse::<u64>()?,
            );
            Arc::new(DynamoAuditStore::new(
                aws_clients().await.dynamodb,
                table,
                retention,
            ))
        }
    })
}

pub async fn audit(args: AuditArgs) -> Result<(), AnyError> {
    let team = TeamId::parse(&args.team)?;
    let filter = AuditFilter {
        job_id: args.job,
        ..AuditFilter::default()
    };
    let page = store(&args)
        .await?
        .list(&team, PageRequest::<AuditId>::first(args.limit), &filter)
        .await?;
    for e in &page.items {
        println!(
            "{}",
            if args.json {
                json_line(e)
            } else {
                table_line(e)
            }
        );
    }
    Ok(())
}

fn json_line(e: &AuditEntry) -> String {
    serde_json::json!({
        "id": e.id, "at": time::format(e.at), "action": e.action.as_str(),
        "job_id": e.job_id, "key_prefix": e.key_prefix.as_ref().map(|k| k.as_str()),
        "status": e.outcome.0, "outcome": e.outcome.label(),
        "request_id": e.request_id, "source": e.source,
    })
    .to_string()
}

fn table_line(e: &AuditEntry) -> String {
    let job = e.job_id.map_or_else(|| "-".to_owned(), |j| j.to_string());
    format!(
        "{}  {:<18}  {:<36}  {:<12}  {} {:<7}  {}  {}",
        time::format(e.at),
        e.action.as_str(),
        job,
        e.key_prefix.as_ref().map_or("-", |k| k.as_str()),
        e.outcome.0,
        e.outcome.label(),
        e.source,
        e.request_id
    )
}
