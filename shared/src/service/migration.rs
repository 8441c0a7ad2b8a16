//! Moving a team's jobs between backends: an export is the team's jobs as their stored
//! records (every field, state included: ids, schedules, `enabled`, `next_run_at`, the last
//! run, a pause's reason); an import writes them to a store, keeping all of it, and is
//! idempotent: a job already there as exported is left alone. Run state that belongs to the
//! old store (the overlap marker) is not carried; executions stay behind.

use serde::{Deserialize, Serialize};

use crate::domain::record::JobRecord;
use crate::domain::{Job, RunMarker, TeamId};
use crate::ports::{
    InsertOutcome, JobStore, PageRequest, ScheduleSync, StoreError, StoreResult, UpdateOutcome,
};

/// The export file's format name.
pub const EXPORT_FORMAT: &str = "krafter-export/1";

/// A team's jobs, as `krafter export` writes them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Export {
    pub format: String,
    pub team: String,
    pub jobs: Vec<JobRecord>,
}

/// Every job of `team` in `jobs`, newest first, as it is at `now` (`Job::as_of`: the next
/// run the job really has, which a hosted store leaves behind).
pub async fn export(
    jobs: &dyn JobStore,
    team: &TeamId,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Export> {
    let page = jobs
        .list(team, PageRequest::all(), &Default::default())
        .await?;
    let records = page
        .items
        .into_iter()
        .map(|j| JobRecord {
            run_marker: None,
            ..JobRecord::from(&j.as_of(now))
        })
        .collect();
    Ok(Export {
        format: EXPORT_FORMAT.to_owned(),
        team: team.as_str().to_owned(),
        jobs: records,
    })
}

/// What an import does to one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    Created,
    Updated,
    Unchanged,
    /// Refused by the target's job quota.
    OverQuota,
}

impl Imported {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Updated => "update",
            Self::Unchanged => "unchanged",
            Self::OverQuota => "over quota",
        }
    }
}

/// The jobs of an export, checked as a store reads them (a record that does not read back as
/// a valid job is refused, with the job and the field named).
pub fn jobs_of(export: &Export) -> Result<Vec<Job>, StoreError> {
    if export.format != EXPORT_FORMAT {
        return Err(StoreError::Corrupt(format!(
            "not a Krafter Cron export (format {:?}, expected {EXPORT_FORMAT:?})",
            export.format
        )));
    }
    export
        .jobs
        .iter()
        .map(|r| Job::try_from(r.clone()).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

/// Imports one job into `jobs` (with `dry_run`, only says what it would do), and syncs its
/// schedule.
pub async fn import_job(
    jobs: &dyn JobStore,
    schedules: &dyn ScheduleSync,
    job: &Job,
    max_jobs: u64,
    dry_run: bool,
) -> StoreResult<Imported> {
    let incoming = Job {
        run_marker: RunMarker::default(),
        ..job.clone()
    };
    let action = match jobs.get(&job.team, job.id).await? {
        None => Imported::Created,
        Some(existing) if same(&existing, &incoming) => return Ok(Imported::Unchanged),
        Some(_) => Imported::Updated,
    };
    if dry_run {
        return Ok(action);
    }
    let written = match jobs.get(&job.team, job.id).await? {
        None => match jobs.insert(&incoming, max_jobs).await? {
            InsertOutcome::Inserted => Imported::Created,
            InsertOutcome::QuotaExceeded => return Ok(Imported::OverQuota),
        },
        Some(existing) => {
            let next = Job {
                version: existing.version + 1,
                ..incoming.clone()
            };
            match jobs.update(&next, existing.version).await? {
                UpdateOutcome::Updated => Imported::Updated,
                UpdateOutcome::NotFound | UpdateOutcome::Conflict => {
                    return Err(StoreError::Corrupt(format!(
                        "job {} changed while it was imported: import again",
                        job.id
                    )));
                }
            }
        }
    };
    schedules.job_changed(&incoming).await?;
    Ok(written)
}

/// The same job, whatever each store's version counter says.
fn same(a: &Job, b: &Job) -> bool {
    let strip = |j: &Job| Job {
        version: 0,
        run_marker: RunMarker::default(),
        ..j.clone()
    };
    strip(a) == strip(b)
}
