//! `krafter audit`: a team's audit log from the embedded store, newest first.

use clap::Args;
use krafter_shared::adapters::sqlite::{SqliteAuditStore, SqliteDb};
use krafter_shared::domain::{AuditFilter, AuditId, JobId, TeamId, time};
use krafter_shared::ports::{AuditStore, PageRequest};

use crate::AnyError;
use crate::stores::DbArg;

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
    #[command(flatten)]
    db: DbArg,
}

pub async fn audit(args: AuditArgs) -> Result<(), AnyError> {
    let team = TeamId::parse(&args.team)?;
    let store = SqliteAuditStore::new(SqliteDb::open(&args.db.db)?);
    let filter = AuditFilter {
        job_id: args.job,
        ..AuditFilter::default()
    };
    let page = store
        .list(&team, PageRequest::<AuditId>::first(args.limit), &filter)
        .await?;
    for e in &page.items {
        let job = e
            .job_id
            .map(|j| j.to_string())
            .unwrap_or_else(|| "-".into());
        let key = e.key_prefix.as_ref().map_or("-", |k| k.as_str());
        if args.json {
            let line = serde_json::json!({
                "id": e.id, "at": time::format(e.at), "action": e.action.as_str(),
                "job_id": e.job_id, "key_prefix": e.key_prefix.as_ref().map(|k| k.as_str()),
                "status": e.outcome.0, "outcome": e.outcome.label(),
                "request_id": e.request_id, "source": e.source,
            });
            println!("{line}");
        } else {
            println!(
                "{}  {:<18}  {:<36}  {:<12}  {} {:<7}  {}  {}",
                time::format(e.at),
                e.action.as_str(),
                job,
                key,
                e.outcome.0,
                e.outcome.label(),
                e.source,
                e.request_id
            );
        }
    }
    Ok(())
}
